/**
 * Soak: `base` clients stay subscribed for `minutes` while, every second, `churn` new users connect,
 * subscribe to the shared channel and their own, receive a batch, and leave. The harness samples the
 * server at every `sample-<k>` mark; a steadily rising RSS under constant load is a leak.
 */
import { Publisher, payload } from "../lib/publisher.ts";
import type { TargetInfo } from "../lib/target.ts";
import { closeAll, connectMany, mark, settle, users, type LoadResult } from "./common.ts";

export interface SoakParams {
  minutes: number;
  sampleEveryMs: number;
  base: number;
  churn: number;
  eventsPerCycle: number;
}

const CHANNEL = "public:soak";

export async function soak(target: TargetInfo, params: SoakParams): Promise<LoadResult> {
  const base = await connectMany(target, users("soak-base", params.base), { concurrency: 100, channel: () => CHANNEL });
  let received = 0;
  for (const client of base.clients) client.onEvent = () => void received++;
  const publisher = new Publisher(target);
  const endAt = performance.now() + params.minutes * 60_000;
  let nextSample = performance.now();
  let sample = 0;
  let cycle = 0;
  let published = 0;
  let churnRefused = 0;
  let failure: string | undefined;
  while (performance.now() < endAt) {
    if (performance.now() >= nextSample) {
      mark(`sample-${sample++}`);
      nextSample += params.sampleEveryMs;
    }
    const cycleStart = performance.now();
    const names = users(`soak-c${cycle++}-`, params.churn);
    const churned = await connectMany(target, names, { concurrency: 50, channel: () => CHANNEL });
    churnRefused += churned.refused;
    await Promise.all(churned.clients.map((client, i) => client.subscribe(`user:${names[i]}`).catch(() => {})));
    try {
      await publisher.batch(Array.from({ length: params.eventsPerCycle }, (_, k) => ({ channel: CHANNEL, event: "tick", data: payload(k) })));
      published += params.eventsPerCycle;
    } catch (error) {
      // Keep the samples taken so far: they show what led up to the failure.
      failure = `cycle ${cycle}: ${(error as Error).message}`;
      closeAll(churned.clients);
      break;
    }
    closeAll(churned.clients);
    const rest = 1_000 - (performance.now() - cycleStart);
    if (rest > 0) await Bun.sleep(rest);
  }
  mark(`sample-${sample}`);
  const expected = published * base.clients.length;
  await settle(() => received >= expected, () => received, 2_000, 10_000);
  closeAll(base.clients);
  return {
    count: received,
    expected,
    lost: expected - received,
    connections: base.clients.length,
    refused: base.refused,
    extra: { cycles: cycle, "churned connections": cycle * params.churn, "churn refused": churnRefused, ...(failure ? { "stopped early": failure } : {}) },
  };
}
