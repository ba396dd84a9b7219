/**
 * Publish API throughput: `count` single publishes with `concurrency` requests in flight and no
 * subscriber, so the number is the publish path itself (validation, offsets, storage). `critical`
 * makes Courier store each event durably before answering.
 */
import { Publisher, payload } from "../lib/publisher.ts";
import { Samples } from "../lib/stats.ts";
import type { TargetInfo } from "../lib/target.ts";
import { mark, type LoadResult } from "./common.ts";

export interface PublishParams {
  count: number;
  concurrency: number;
  critical: boolean;
  /** Publishes sent before the window opens, `concurrency` in flight. */
  warmup: number;
}

export async function publishThroughput(target: TargetInfo, params: PublishParams): Promise<LoadResult> {
  const publisher = new Publisher(target);
  const channel = params.critical ? "public:pub-critical" : "public:pub-plain";
  const one = (seq: number) =>
    publisher.publish({ channel, event: "tick", data: payload(seq), ...(target.kind === "courier" ? { critical: params.critical } : {}) });
  // Warm-up, outside the window, the same for every target: the row is about a publish API that has
  // been running, not about the JIT compiling it (with 50 warm-up publishes, a third of Courier's
  // 1.5 s window was the compiler's threads; bench/PROFILE.md §3.1).
  await Promise.all(Array.from({ length: params.concurrency }, async () => {
    for (let i = 0; i < params.warmup / params.concurrency; i++) await one(-1);
  }));

  mark("start");
  const started = performance.now();
  const latency = new Samples(params.count);
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const worker = async () => {
    while (next < params.count) {
      const seq = next++;
      const sent = performance.now();
      try {
        await one(seq);
        latency.add(performance.now() - sent);
      } catch (error) {
        failed++;
        firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: params.concurrency }, worker));
  const durationMs = performance.now() - started;
  mark("end");
  return {
    count: latency.size,
    expected: params.count,
    durationMs,
    rate: (latency.size / durationMs) * 1000,
    latency: latency.summary(),
    extra: { failed, ...(firstError ? { "first error": firstError } : {}) },
  };
}
