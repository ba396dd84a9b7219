/**
 * Connect storm: `connections` clients connecting at once (at most `concurrency` handshakes in
 * flight, so the listen backlog is the server's problem, not the kernel's), timed until the last is
 * welcomed. Tokens are signed before the clock starts.
 */
import { tokensFor } from "../lib/clients.ts";
import { summarize } from "../lib/stats.ts";
import type { TargetInfo } from "../lib/target.ts";
import { closeAll, connectMany, mark, users, type LoadResult } from "./common.ts";

export interface StormParams {
  connections: number;
  concurrency: number;
}

export async function storm(target: TargetInfo, params: StormParams): Promise<LoadResult> {
  const names = users("storm", params.connections);
  const tokens = await tokensFor(target, names);
  mark("start");
  const started = performance.now();
  const { clients, refused, firstError, connectMs } = await connectMany(target, names, { concurrency: params.concurrency, tokens });
  const durationMs = performance.now() - started;
  mark("end");
  closeAll(clients);
  return {
    count: clients.length,
    expected: params.connections,
    durationMs,
    rate: (clients.length / durationMs) * 1000,
    latency: summarize(connectMs),
    connections: clients.length,
    refused,
    extra: firstError ? { "first refusal": firstError } : {},
  };
}
