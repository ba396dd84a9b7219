/**
 * The hub: the one place where stored events meet sockets. Per publish it does a constant amount
 * of work (the engine stores, then `deliver` calls the transport's `publish` once per event: Bun's
 * native topic fan-out writes to every subscriber). Per subscriber it does nothing on that path.
 *
 * Joining a channel closes the race between reading history and joining the live topic: the node
 * watches the channel first (so everything after W reaches `deliver`), reads history, then in one
 * synchronous step replays history up to what was delivered, adds the buffered tail, and joins
 * the topic. Anything later arrives live: no gap, no duplicate.
 *
 * Sockets are reached through a `HubTransport` (Bun's in `bun-transport.ts`), so the join's races
 * are unit-tested with a fake transport and a fake broker (tests/unit/hub.test.ts).
 *
 * Why one file over 300 lines: the race-sensitive join (watch, replay, buffer tail, subscribe in
 * one synchronous step) and the live path share the per-channel state; its transport and stream
 * rendering are already apart.
 */
import type { Broker, StoredEvent } from "../engine/types.ts";
import { channelKind } from "../protocol/channel.ts";
import { NotRecoveredReason } from "../protocol/codes.ts";
import type { Since, SubscribedFrame, RequestId } from "../protocol/frames.ts";
import { recoveryVerdict, type RecoveryVerdict } from "../protocol/recovery.ts";
import { RecentBuffer } from "./recent-buffer.ts";
import { CriticalTracker, type AckOutcome } from "./critical-tracker.ts";
import type { HubTransport } from "./hub-transport.ts";
import { collapseStreams } from "./stream-replay.ts";
import type { StreamLog } from "./stream-log.ts";

/** What the hub asks of the engine: positions, history and watching channels. */
export type HubBroker = Pick<Broker, "position" | "history" | "watch" | "unwatch" | "deliversAll">;

export interface HubOptions<S = unknown> {
  engine: HubBroker;
  now: () => number;
  recentPerChannel: number;
  memoryCapBytes: number;
  replayLimit: number;
  /** Called after each fan-out batch: events, local subscribers, publish → fan-out ms of the first. */
  onFanout?: (channel: string, events: number, subscribers: number, latencyMs: number) => void;
  /** The transport's `publish` reported backpressure on some subscriber. */
  onBackpressure?: () => void;
  onReplay?: (events: number) => void;
  /**
   * `socket` joined (+1: on the live topic) or left (-1) `channel`: presence counts follow
   * subscriptions here, at join and leave, never on the publish path.
   */
  onMembership?: (socket: S, channel: string, delta: 1 | -1) => void;
  /**
   * Agent streams (PROTOCOL §8): renders their live frames (one per stream per batch) and the
   * snapshot a join without `since` gets. Without it stream events pass as stored.
   */
  streams?: Pick<StreamLog, "live" | "snapshots" | "ensure" | "forget" | "release" | "prune">;
}

export interface JoinResult {
  subscribed: SubscribedFrame;
  /** Offset the subscription starts after, for acks and sessions. */
  from: number;
  acked: number;
}

/** History pages re-read at most this often in one join, should the buffer not cover the tail. */
export const MAX_JOIN_READS = 4;

/** A join that could not read the whole tail: what was read is replayed, the rest is lost. */
const TAIL_LOST: RecoveryVerdict = { recovered: false, reason: NotRecoveredReason.HistoryTrimmed, replay: true };

/**
 * `S` is the transport's socket handle.
 *
 * @example
 * const hub = new Hub<BunSocket>({ engine, now: Date.now, recentPerChannel: 256, memoryCapBytes: 64 << 20, replayLimit: 1000 });
 * await engine.start(hub.deliver);
 * hub.attach(bunTransport(Bun.serve({ ... })));
 */
export class Hub<S> {
  readonly #engine: HubBroker;
  readonly #now: () => number;
  readonly #replayLimit: number;
  readonly #buffer: RecentBuffer;
  readonly #critical = new CriticalTracker();
  /** Local subscribers (joined or joining) per channel. */
  readonly #local = new Map<string, number>();
  /** Highest offset delivered on this node per channel. */
  readonly #delivered = new Map<string, number>();
  /** Last epoch seen per channel. */
  readonly #epochs = new Map<string, string>();
  /** Channels being watched: resolves once delivery is complete above the returned offset. */
  readonly #watching = new Map<string, Promise<number>>();
  readonly #options: HubOptions<S>;
  #transport: HubTransport<S> | null = null;

  constructor(options: HubOptions<S>) {
    this.#options = options;
    this.#engine = options.engine;
    this.#now = options.now;
    this.#replayLimit = options.replayLimit;
    this.#buffer = new RecentBuffer({ perChannel: options.recentPerChannel, capBytes: options.memoryCapBytes });
  }

  /** Connects the hub to its sockets; until then deliveries only fill the buffer. */
  attach(transport: HubTransport<S>): void {
    this.#transport = transport;
  }

  /** The engine's delivery callback: committed events of one channel, in order. */
  readonly deliver = (channel: string, events: StoredEvent[], epoch?: string): void => {
    if (events.length === 0) return;
    // The embedded engine delivers every channel: per-channel state is kept only for channels this
    // node watches (and forgotten when the last subscriber leaves), so it never grows with the
    // number of channels ever published. The buffer keeps recent events of all, under its cap.
    const raw = events;
    if (this.#options.streams) events = this.#options.streams.live(channel, events);
    if (this.#watching.has(channel)) {
      if (epoch !== undefined) {
        // An equal epoch keeps the string already held, which subscriptions share (#sharedEpoch).
        const known = this.#epochs.get(channel);
        if (known !== epoch) {
          this.#epochs.set(channel, epoch);
          if (known !== undefined) this.#epochChanged(channel, epoch, events[0]!.offset - 1);
        }
      }
      this.#delivered.set(channel, events[events.length - 1]!.offset);
      for (const e of events) if (e.critical) this.#critical.add(channel, e.offset, e.ts);
    }
    // The buffer keeps stored events: a join's catch-up collapses them for its own `since`.
    this.#buffer.push(channel, raw);
    const subscribers = this.#local.get(channel) ?? 0;
    const transport = this.#transport;
    if (transport && subscribers > 0) {
      let worst = 1;
      for (const e of events) worst = Math.min(worst, transport.publish(channel, e.frame));
      // -1: queued under backpressure somewhere. Never republish on 0 (BUN-NOTES).
      if (worst === -1) this.#options.onBackpressure?.();
    }
    this.#options.onFanout?.(channel, events.length, subscribers, this.#now() - events[0]!.ts);
  };

  /**
   * Joins `socket` to `channel`, replaying after `since` when given. The caller has checked
   * permissions. Sends `subscribed`, the replay, and leaves the socket on the live topic.
   * Returns null if the socket closed meanwhile.
   */
  async join(socket: S, channel: string, since: Since | null, id?: RequestId): Promise<JoinResult | null> {
    const transport = this.#transport;
    if (!transport) throw new TypeError("Cannot join: the hub has no transport attached");
    this.#retain(channel);
    let joined = false;
    try {
      const watchedFrom = await this.#watch(channel);
      const top = () => Math.max(this.#delivered.get(channel) ?? 0, watchedFrom);
      if (!since) {
        const streams = this.#options.streams;
        const [position] = await Promise.all([this.#engine.position(channel), streams?.ensure(channel)]);
        if (transport.isClosed(socket)) return null;
        const epoch = this.#sharedEpoch(channel, position.epoch);
        const frame: SubscribedFrame = { type: "subscribed", channel, epoch, offset: top() };
        // The one exception to "live events only": the text so far of each open stream (§8).
        joined = this.#subscribe(transport, socket, frame, streams?.snapshots(channel) ?? [], id);
        return { subscribed: frame, from: frame.offset, acked: frame.offset };
      }

      const page = await this.#engine.history(channel, since.offset, this.#replayLimit);
      if (transport.isClosed(socket)) return null;
      const epoch = this.#sharedEpoch(channel, page.epoch);
      const frame: SubscribedFrame = { type: "subscribed", channel, epoch, offset: top(), recovered: false };
      // What this node delivered counts as the top too: the page may have been read before it.
      let verdict = recoveryVerdict(since, { epoch, offset: Math.max(page.offset, top()), trimmedThrough: page.trimmedThrough });
      if (!verdict.replay) {
        frame.reason = verdict.reason;
        joined = this.#subscribe(transport, socket, frame, [], id);
        return { subscribed: frame, from: frame.offset, acked: frame.offset };
      }

      let replay = page.events;
      for (let reads = 1; ; reads++) {
        const delivered = top();
        // Live delivery brings everything above `delivered`: history beyond it would duplicate.
        let end = replay.length;
        while (end > 0 && replay[end - 1]!.offset > delivered) end--;
        if (end < replay.length) replay = replay.slice(0, end);
        const cursor = end > 0 ? replay[end - 1]!.offset : since.offset;
        if (cursor >= delivered) break;
        const tail = this.#buffer.after(channel, cursor);
        if (tail !== null) {
          for (const e of tail) if (e.offset <= delivered) replay.push(e);
          break;
        }
        // The buffer no longer reaches back to the cursor (a long read under heavy publishing).
        if (reads >= MAX_JOIN_READS || replay.length >= this.#replayLimit) {
          verdict = TAIL_LOST;
          break;
        }
        const more = await this.#engine.history(channel, cursor, this.#replayLimit - replay.length);
        if (transport.isClosed(socket)) return null;
        if (!recoveryVerdict({ offset: cursor }, more).recovered) verdict = TAIL_LOST;
        replay = replay.concat(more.events);
      }
      frame.offset = top();
      frame.recovered = verdict.recovered;
      if (!verdict.recovered) frame.reason = verdict.reason;
      if (this.#options.streams) replay = collapseStreams(replay);
      joined = this.#subscribe(transport, socket, frame, replay.map((e) => e.frame), id);
      if (replay.length > 0) this.#options.onReplay?.(replay.length);
      return { subscribed: frame, from: since.offset, acked: since.offset };
    } finally {
      if (!joined) this.#release(channel);
    }
  }

  /**
   * History was lost under live subscribers (a cluster store dropped the channel, or went back to
   * an older snapshot): the new epoch's live events follow `offset` (0 when offsets start over).
   * One `subscribed` frame to the topic tells every subscriber, so clients reset their tracking
   * instead of dropping the new offsets as duplicates.
   */
  #epochChanged(channel: string, epoch: string, offset: number): void {
    this.#buffer.drop(channel);
    this.#delivered.set(channel, offset);
    const frame: SubscribedFrame = { type: "subscribed", channel, epoch, offset, recovered: false, reason: NotRecoveredReason.EpochChanged };
    if ((this.#local.get(channel) ?? 0) > 0) this.#transport?.publish(channel, JSON.stringify(frame));
  }

  /**
   * `epoch` as the string this node already holds for `channel` when the two are equal (and held
   * from now when it holds none). Each subscription keeps the epoch it joined under, and an engine
   * reads a new string per join (the embedded one even hashes one for a channel without events):
   * shared, it costs one string per channel instead of one, or two, per subscription.
   */
  #sharedEpoch(channel: string, epoch: string): string {
    const known = this.#epochs.get(channel);
    if (known === undefined) this.#epochs.set(channel, epoch);
    return known === epoch ? known : epoch;
  }

  /** The epoch this node last saw for `channel`, if any. */
  epochOf(channel: string): string | undefined {
    return this.#epochs.get(channel);
  }

  /** Removes `socket` from `channel`'s live topic. */
  leave(socket: S, channel: string): void {
    const transport = this.#transport;
    if (transport && !transport.isClosed(socket)) transport.unsubscribe(socket, channel);
    this.#release(channel);
    this.#options.onMembership?.(socket, channel, -1);
  }

  /** Confirms critical events in (from, to] on `channel`. */
  acked(channel: string, from: number, to: number): AckOutcome {
    return this.#critical.acked(channel, from, to, this.#now());
  }

  /** Critical events after `after` a subscriber can have received, published before `before` (see CriticalTracker.overdue). */
  overdue(channel: string, after: number, before: number): { count: number; through: number } | null {
    return this.#critical.overdue(channel, after, this.#delivered.get(channel) ?? 0, before);
  }

  /** Earliest unacknowledged critical event a subscriber acked through `after` can have received. */
  oldestUnacked(channel: string, after: number): { ts: number; count: number } | null {
    return this.#critical.oldestUnacked(channel, after, this.#delivered.get(channel) ?? 0);
  }

  /** Highest offset delivered on this node for `channel` (0 if none yet). */
  deliveredTop(channel: string): number {
    return this.#delivered.get(channel) ?? 0;
  }

  /** Periodic housekeeping: forget critical entries and idle stream texts older than `before`. */
  prune(before: number): void {
    this.#critical.prune(before);
    this.#options.streams?.prune(before);
  }

  bufferStats() {
    return this.#buffer.stats();
  }

  /** Local subscriber count per channel kind (`user`, `job`, …). */
  subscriptionsByKind(): Record<string, number> {
    // No prototype: a channel kind such as `constructor` must count, not collide.
    const byKind: Record<string, number> = Object.create(null);
    for (const [channel, n] of this.#local) {
      const kind = channelKind(channel);
      byKind[kind] = (byKind[kind] ?? 0) + n;
    }
    return byKind;
  }

  #subscribe(transport: HubTransport<S>, socket: S, frame: SubscribedFrame, replay: readonly string[], id?: RequestId): true {
    subscribe(transport, socket, frame, replay, id);
    this.#options.onMembership?.(socket, frame.channel, 1);
    return true;
  }

  #retain(channel: string): void {
    this.#local.set(channel, (this.#local.get(channel) ?? 0) + 1);
  }

  #release(channel: string): void {
    const n = (this.#local.get(channel) ?? 1) - 1;
    if (n > 0) {
      this.#local.set(channel, n);
      return;
    }
    this.#local.delete(channel);
    if (this.#watching.has(channel)) {
      this.#watching.delete(channel);
      this.#engine.unwatch(channel);
      this.#delivered.delete(channel);
      this.#epochs.delete(channel);
      this.#critical.drop(channel);
      // Cluster deliveries stop while unwatched: the buffer would no longer be contiguous.
      if (!this.#engine.deliversAll) {
        this.#buffer.drop(channel);
        this.#options.streams?.forget(channel);
      } else {
        this.#options.streams?.release(channel);
      }
    }
  }

  #watch(channel: string): Promise<number> {
    let watching = this.#watching.get(channel);
    if (!watching) {
      watching = this.#engine.watch(channel).then((from) => {
        if ((this.#delivered.get(channel) ?? 0) < from) this.#delivered.set(channel, from);
        return from;
      });
      watching.catch(() => this.#watching.delete(channel));
      this.#watching.set(channel, watching);
    }
    return watching;
  }
}

/** Sends `subscribed` and the replay, then joins the live topic, all in one synchronous step. */
function subscribe<S>(transport: HubTransport<S>, socket: S, frame: SubscribedFrame, replay: readonly string[], id?: RequestId): true {
  if (id !== undefined) frame.id = id;
  transport.send(socket, JSON.stringify(frame));
  for (const text of replay) transport.send(socket, text);
  transport.subscribe(socket, frame.channel);
  return true;
}
