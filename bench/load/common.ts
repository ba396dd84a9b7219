/**
 * What every load scenario shares: connecting many clients with bounded concurrency, the stdout
 * protocol with the harness (`MARK <name>` lines make it sample the server's /proc; one `RESULT`
 * line ends the run), and the clock-offset estimate.
 */
import { connect, tokensFor, type BenchClient } from "../lib/clients.ts";
import { nowMs } from "../lib/proc.ts";
import { Samples, type Summary } from "../lib/stats.ts";
import type { TargetInfo } from "../lib/target.ts";

export interface LoadResult {
  /** Deliveries (or operations) counted in the measured window. */
  count?: number;
  expected?: number;
  durationMs?: number;
  /** count per second over the measured window. */
  rate?: number;
  /** Publish call → receive, on this process's clock. */
  latency?: Summary;
  /** Server `ts` → receive, corrected by the clock-offset estimate. */
  tsLatency?: Summary;
  clockOffsetMs?: number;
  lost?: number;
  dup?: number;
  connections?: number;
  refused?: number;
  /** Scenario-specific numbers, shown in the details section. */
  extra?: Record<string, number | string>;
  /** Set when the scenario does not apply or a feature answered an error. */
  skipped?: string;
  error?: string;
}

/** Tells the harness to sample the server now; it pairs marks by name. */
export function mark(name: string): void {
  console.log(`MARK ${name}`);
}

export function users(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`);
}

export interface Connected {
  clients: BenchClient[];
  refused: number;
  firstError?: string;
  /** ms from start to welcome, per accepted client. */
  connectMs: number[];
}

/**
 * Connects one client per user with at most `concurrency` handshakes in flight, optionally subscribing
 * each to `channel(i)`. Refusals are counted, not thrown: a capacity limit is a result.
 */
export async function connectMany(
  target: TargetInfo,
  names: string[],
  options: { concurrency: number; channel?: (i: number) => string; tokens?: string[] },
): Promise<Connected> {
  const tokens = options.tokens ?? (await tokensFor(target, names));
  const clients: BenchClient[] = new Array(names.length);
  const connectMs: number[] = [];
  let refused = 0;
  let firstError: string | undefined;
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const i = next++;
      const started = performance.now();
      try {
        const client = await connect(target, { user: names[i]!, token: tokens[i] });
        await client.ready;
        connectMs.push(performance.now() - started);
        if (options.channel) await client.subscribe(options.channel(i));
        clients[i] = client;
      } catch (error) {
        refused++;
        firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, names.length) }, worker));
  return { clients: clients.filter(Boolean), refused, firstError, connectMs };
}

/**
 * Offset of the server clock from ours: `ts − midpoint` of the fastest of a few pings. Both run on
 * one machine, so this is ≈ 0 plus the server's ms truncation of `ts`.
 */
export async function clockOffset(client: BenchClient, rounds = 10): Promise<number> {
  let best = { rtt: Number.POSITIVE_INFINITY, offset: 0 };
  for (let i = 0; i < rounds; i++) {
    const sent = nowMs();
    const ts = await client.ping();
    const received = nowMs();
    if (received - sent < best.rtt) best = { rtt: received - sent, offset: ts - (sent + received) / 2 };
  }
  return best.offset;
}

/** Waits until `done()` or no progress (as told by `progress()`) for `idleMs`, bounded by `maxMs`. */
export async function settle(done: () => boolean, progress: () => number, idleMs = 2_000, maxMs = 30_000): Promise<void> {
  const deadline = performance.now() + maxMs;
  let last = progress();
  let lastChange = performance.now();
  while (!done() && performance.now() < deadline) {
    await Bun.sleep(5);
    const now = progress();
    if (now !== last) {
      last = now;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > idleMs) {
      return;
    }
  }
}

export function closeAll(clients: BenchClient[]): void {
  for (const client of clients) client.close();
}

/**
 * What every subscriber of a delivery scenario records: each (client, seq) counted once, duplicates
 * counted apart, latency on this clock and from the server's `ts`. Warm-up events (seq < 0) and
 * anything outside `0..events-1` are only counted as `warm`.
 */
export class DeliveryTracker {
  readonly #seen: Uint8Array;
  readonly #events: number;
  readonly #offset: number;
  readonly latency: Samples;
  readonly tsLatency: Samples;
  unique = 0;
  dup = 0;
  warm = 0;
  lastAt = 0;

  constructor(clients: BenchClient[], events: number, clockOffsetMs: number) {
    this.#events = events;
    this.#offset = clockOffsetMs;
    this.#seen = new Uint8Array(clients.length * events);
    this.latency = new Samples(clients.length * events);
    this.tsLatency = new Samples(clients.length * events);
    clients.forEach((client, i) => {
      const base = i * events;
      client.onEvent = (seq, sentAt, ts) => this.#record(base, seq, sentAt, ts);
    });
  }

  #record(base: number, seq: number, sentAt: number, ts: number): void {
    if (seq < 0 || seq >= this.#events) {
      this.warm++;
      return;
    }
    const now = nowMs();
    if (this.#seen[base + seq] !== 0) {
      this.dup++;
      return;
    }
    this.#seen[base + seq] = 1;
    this.unique++;
    this.lastAt = now;
    this.latency.add(now - sentAt);
    this.tsLatency.add(now - ts + this.#offset);
  }

  /** The scenario's result over `durationMs`, for `connections` subscribers. */
  result(durationMs: number, connections: number, refused: number, extra?: LoadResult["extra"]): LoadResult {
    const expected = connections * this.#events;
    const result: LoadResult = {
      count: this.unique,
      expected,
      durationMs,
      rate: (this.unique / durationMs) * 1000,
      latency: this.latency.summary(),
      tsLatency: this.tsLatency.summary(),
      clockOffsetMs: this.#offset,
      lost: expected - this.unique,
      dup: this.dup,
      connections,
      refused,
    };
    if (extra) result.extra = extra;
    return result;
  }
}
