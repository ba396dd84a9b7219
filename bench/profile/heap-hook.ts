/**
 * Preloaded into a server under profile (`bun --preload bench/profile/heap-hook.ts …`), never
 * imported by product code: on SIGUSR2 it runs a full GC and writes `bun:jsc` heapStats() (object
 * counts by type) to `$PROFILE_HEAP_OUT.<n>.json`, and a JSC heap snapshot beside it when
 * `PROFILE_HEAP_SNAPSHOT=1`. The profiler waits for the `.done` file it writes last.
 */
import { heapStats } from "bun:jsc";
import { writeFileSync } from "node:fs";

const out = process.env.PROFILE_HEAP_OUT;
let n = 0;
if (out) {
  process.on("SIGUSR2", () => {
    const i = n++;
    Bun.gc(true);
    Bun.gc(true);
    const stats = heapStats();
    const memory = process.memoryUsage();
    writeFileSync(`${out}.${i}.json`, JSON.stringify({ heap: stats, memory }, null, 1));
    if (process.env.PROFILE_HEAP_SNAPSHOT === "1") writeFileSync(`${out}.${i}.heapsnapshot`, JSON.stringify(Bun.generateHeapSnapshot()));
    writeFileSync(`${out}.${i}.done`, "");
  });
}

// bench/servers/bare-bun.ts has no SIGTERM handler: without one the process dies before Bun writes
// the CPU profile (written at a normal exit).
if (process.env.PROFILE_EXIT_ON_TERM === "1") process.on("SIGTERM", () => process.exit(0));
