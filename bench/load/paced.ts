/**
 * Paced latency: `subscribers` clients on one channel, one publish every 1000/`ratePerSec` ms for
 * `seconds`, so the offered load (subscribers × rate deliveries/s) stays below every target's
 * capacity and the numbers are latency, not queueing.
 */
import { Publisher, payload } from "../lib/publisher.ts";
import type { TargetInfo } from "../lib/target.ts";
import { DeliveryTracker, clockOffset, closeAll, connectMany, mark, settle, users, type LoadResult } from "./common.ts";

export interface PacedParams {
  subscribers: number;
  ratePerSec: number;
  seconds: number;
}

const CHANNEL = "public:paced";

export async function paced(target: TargetInfo, params: PacedParams): Promise<LoadResult> {
  const events = Math.round(params.ratePerSec * params.seconds);
  const { clients, refused, firstError } = await connectMany(target, users("paced", params.subscribers), { concurrency: 100, channel: () => CHANNEL });
  if (clients.length === 0) return { error: `no subscriber connected: ${firstError}`, refused };
  const offset = await clockOffset(clients[0]!);

  const track = new DeliveryTracker(clients, events, offset);

  const publisher = new Publisher(target);
  const WARMUP = 10;
  for (let i = 0; i < WARMUP; i++) await publisher.publish({ channel: CHANNEL, event: "tick", data: payload(-1) });
  await settle(() => track.warm >= WARMUP * clients.length, () => track.warm, 1_000, 5_000);

  mark("start");
  const intervalMs = 1000 / params.ratePerSec;
  const started = performance.now();
  const inFlight = new Set<Promise<unknown>>();
  let failed = 0;
  for (let seq = 0; seq < events; seq++) {
    // Scheduled from the start time, so a slow publish does not shift every later one.
    const wait = started + seq * intervalMs - performance.now();
    if (wait > 0) await Bun.sleep(wait);
    const sent = publisher.publish({ channel: CHANNEL, event: "tick", data: payload(seq) }).catch(() => failed++);
    inFlight.add(sent);
    void sent.finally(() => inFlight.delete(sent));
  }
  await Promise.all(inFlight);
  const expected = clients.length * events;
  await settle(() => track.unique >= expected, () => track.unique + track.dup);
  mark("end");
  const durationMs = performance.now() - started;
  closeAll(clients);
  return track.result(durationMs, clients.length, refused, { "offered deliveries/s": clients.length * params.ratePerSec, "failed publishes": failed });
}
