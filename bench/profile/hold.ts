/**
 * Load side of the memory profile: `connections` clients connect (200 handshakes in flight) and
 * each subscribes to `public:idle` (or nothing with `subscribe: false`), then the process prints
 * `MARK after` and holds every socket open until a line arrives on stdin, so the server's heap can
 * be read while they are all idle. With `warm`, that many clients connect and leave first.
 * argv[2]: `{"target","connections","subscribe","warm"?}`.
 */
import type { TargetInfo } from "../lib/target.ts";
import { tokensFor } from "../lib/clients.ts";
import { closeAll, connectMany, mark, users } from "../load/common.ts";

const job = JSON.parse(process.argv[2] ?? "{}") as { target: TargetInfo; connections: number; subscribe: boolean; warm?: number };
const names = users("hold", job.connections);
const tokens = await tokensFor(job.target, names);
if (job.warm) {
  // Churn first, so `before` already holds what the connect path leaves behind in the allocator:
  // the difference is then what an open connection keeps.
  const warmNames = users("warm", job.warm);
  const warm = await connectMany(job.target, warmNames, { concurrency: 200, channel: job.subscribe ? () => "public:idle" : undefined, tokens: await tokensFor(job.target, warmNames) });
  closeAll(warm.clients);
  await Bun.sleep(2_000);
}
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
