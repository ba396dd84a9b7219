/**
 * Fan-out: `subscribers` clients on one channel, `events` publishes of ~200 B, either one publish
 * per HTTP request awaited in turn (one server turn per event) or `burst` items per batch request.
 * Measures deliveries/s from the first publish to the last delivery, latency, loss and duplicates.
 */
import { Publisher, payload, type PublishItem } from "../lib/publisher.ts";
import { nowMs } from "../lib/proc.ts";
import type { TargetInfo } from "../lib/target.ts";
import { DeliveryTracker, clockOffset, closeAll, connectMany, mark, settle, users, type LoadResult } from "./common.ts";

export interface FanoutParams {
  subscribers: number;
  events: number;
  /** 1 = one publish per request; n = batches of n. */
  burst: number;
}

const CHANNEL = "public:bench";
const WARMUP = 20;

export async function fanout(target: TargetInfo, params: FanoutParams): Promise<LoadResult> {
  const { subscribers, events, burst } = params;
  const { clients, refused, firstError } = await connectMany(target, users("fan", subscribers), { concurrency: 100, channel: () => CHANNEL });
  if (clients.length === 0) return { error: `no subscriber connected: ${firstError}`, refused };
  const offset = await clockOffset(clients[0]!);

  const track = new DeliveryTracker(clients, events, offset);

  const publisher = new Publisher(target);
  const item = (seq: number): PublishItem => ({ channel: CHANNEL, event: "tick", data: payload(seq) });
  // Warm-up with seq -1: JIT, TCP windows and the publish path, outside the measured window.
  for (let i = 0; i < WARMUP; i++) await publisher.publish(item(-1));
  await settle(() => track.warm >= WARMUP * clients.length, () => track.warm, 1_000, 5_000);

  mark("start");
  const started = nowMs();
  for (let seq = 0; seq < events; seq += burst) {
    if (burst === 1) await publisher.publish(item(seq));
    else await publisher.batch(Array.from({ length: Math.min(burst, events - seq) }, (_, k) => item(seq + k)));
  }
  const expected = clients.length * events;
  await settle(() => track.unique >= expected, () => track.unique + track.dup);
  mark("end");
  closeAll(clients);
  return track.result(track.lastAt - started, clients.length, refused);
}
