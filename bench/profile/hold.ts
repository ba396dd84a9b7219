/**
 * Load side of the memory profile: `connections` clients connect (200 handshakes in flight) and
 * each subscribes to `public:idle` (or nothing with `subscribe: false`), then the process prints
 * `MARK after` and holds every socket open until a line arrives on stdin, so the server's heap can
 * be read while they are all idle. argv[2]: `{"target","connections","subscribe"}`.
 */
import type { TargetInfo } from "../lib/target.ts";
import { tokensFor } from "../lib/clients.ts";
import { closeAll, connectMany, mark, users } from "../load/common.ts";

const job = JSON.parse(process.argv[2] ?? "{}") as { target: TargetInfo; connections: number; subscribe: boolean };
const names = users("hold", job.connections);
const tokens = await tokensFor(job.target, names);
mark("before");
const { clients, refused, firstError } = await connectMany(job.target, names, {
  concurrency: 200,
  channel: job.subscribe ? () => "public:idle" : undefined,
  tokens,
});
console.log(`CONNECTED ${clients.length} refused ${refused}${firstError ? ` (${firstError})` : ""}`);
await Bun.sleep(1_000);
mark("after");
for await (const _line of console) break;
closeAll(clients);
process.exit(0);
