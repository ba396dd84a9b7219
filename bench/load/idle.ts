/**
 * Idle connections: `connections` clients, each subscribed to one channel, then nothing. The harness
 * reads the server's VmRSS at `before` and `after`; per-connection cost is their difference over the
 * connections the server accepted.
 */
import { tokensFor } from "../lib/clients.ts";
import type { TargetInfo } from "../lib/target.ts";
import { closeAll, connectMany, mark, users, type LoadResult } from "./common.ts";

export interface IdleParams {
  connections: number;
  settleMs: number;
}

export async function idle(target: TargetInfo, params: IdleParams): Promise<LoadResult> {
  const names = users("idle", params.connections);
  // Tokens first: signing is load-side work and must not overlap the server's settle time.
  const tokens = await tokensFor(target, names);
  await Bun.sleep(params.settleMs);
  mark("before");
  const { clients, refused, firstError } = await connectMany(target, names, { concurrency: 200, channel: () => "public:idle", tokens });
  await Bun.sleep(params.settleMs);
  mark("after");
  closeAll(clients);
  return {
    connections: clients.length,
    refused,
    count: clients.length,
    expected: params.connections,
    extra: firstError ? { "first refusal": firstError } : {},
  };
}
