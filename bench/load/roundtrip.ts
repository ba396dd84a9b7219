/**
 * Round trips: `users` connections, each sending `trips` ping frames one after another (one every
 * `intervalMs`, below Courier's per-connection frame rate limit) and timing ping → pong on this
 * process's clock. On Courier, also `rpc` frames to `agent.run` when the server supports it.
 */
import type { BenchClient } from "../lib/clients.ts";
import { Samples } from "../lib/stats.ts";
import type { TargetInfo } from "../lib/target.ts";
import { closeAll, connectMany, mark, users, type LoadResult } from "./common.ts";

export interface RoundtripParams {
  users: number;
  trips: number;
  intervalMs: number;
  rpcs: number;
}

/** `step` every `intervalMs`, starting `phaseMs` late: independent users do not tick in lockstep. */
async function paced(count: number, intervalMs: number, step: () => Promise<void>, phaseMs = 0): Promise<void> {
  const started = performance.now() + phaseMs;
  for (let i = 0; i < count; i++) {
    const wait = started + i * intervalMs - performance.now();
    if (wait > 0) await Bun.sleep(wait);
    await step();
  }
}

export async function roundtrip(target: TargetInfo, params: RoundtripParams): Promise<LoadResult> {
  const { clients, refused, firstError } = await connectMany(target, users("rt", params.users), { concurrency: params.users });
  if (clients.length === 0) return { error: `no client connected: ${firstError}`, refused };
  // A few unmeasured trips per client warm the JIT on both sides.
  await Promise.all(clients.map((client) => paced(10, params.intervalMs, async () => void (await client.ping()))));

  mark("start");
  const started = performance.now();
  const rtt = new Samples(params.users * params.trips);
  const ping = (client: BenchClient) => async () => {
    const sent = performance.now();
    await client.ping();
    rtt.add(performance.now() - sent);
  };
  await Promise.all(clients.map((client, i) => paced(params.trips, params.intervalMs, ping(client), (i * params.intervalMs) / clients.length)));
  const durationMs = performance.now() - started;
  mark("end");

  const extra: Record<string, number | string> = {};
  if (target.kind === "courier" && params.rpcs > 0) {
    const first = await clients[0]!.rpc("agent.run", { prompt: "bench" }).catch((error: Error) => ({ type: "error", code: error.message }));
    if (first.type === "error") {
      extra.rpc = `skipped: agent.run answered ${first.code ?? "error"}`;
    } else {
      const rpcRtt = new Samples();
      const call = (client: BenchClient) => async () => {
        const sent = performance.now();
        const reply = await client.rpc("agent.run", { prompt: "bench" });
        if (reply.type === "result") rpcRtt.add(performance.now() - sent);
      };
      await Promise.all(clients.map((client) => paced(params.rpcs, params.intervalMs * 4, call(client))));
      const summary = rpcRtt.summary();
      if (summary) Object.assign(extra, { "rpc n": summary.n, "rpc p50 ms": summary.p50, "rpc p99 ms": summary.p99, "rpc max ms": summary.max });
    }
  }
  closeAll(clients);
  return {
    count: rtt.size,
    expected: params.users * params.trips,
    durationMs,
    rate: (rtt.size / durationMs) * 1000,
    latency: rtt.summary(),
    connections: clients.length,
    refused,
    extra,
  };
}
