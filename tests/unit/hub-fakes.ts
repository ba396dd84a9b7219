/**
 * Test doubles for the hub: a transport that records every write (as centrifuge's `testTransport`
 * does) and a broker whose `watch`, `position` and `history` answer only when the test says, so a
 * join can be stopped at any await while live events arrive. Not a test file itself.
 */
import type { DeliverFn, HistoryPage, Position, StoredEvent } from "../../src/engine/types.ts";
import type { HubBroker } from "../../src/delivery/hub.ts";
import type { HubTransport } from "../../src/delivery/hub-transport.ts";
import { eventFrame } from "../../src/protocol/serializer.ts";

export type Frame = Record<string, any>;

/** One socket: `frames` holds every frame written to it, parsed, in order. */
export class FakeSocket {
  readonly frames: Frame[] = [];
  closed = false;

  write(data: string): void {
    this.frames.push(JSON.parse(data));
  }
  /** Offsets of the event frames received on `channel`, in arrival order. */
  offsets(channel: string): number[] {
    return this.frames.filter((f) => f.type === "event" && f.channel === channel).map((f) => f.offset);
  }
  ofType(type: string): Frame[] {
    return this.frames.filter((f) => f.type === type);
  }
}

/** Topics in a map; `publish` writes to each subscriber and records the call. */
export class FakeTransport implements HubTransport<FakeSocket> {
  readonly topics = new Map<string, Set<FakeSocket>>();
  /** Every publish, in order: the hub must make one per event, whatever the subscriber count. */
  readonly published: Array<{ topic: string; data: string }> = [];
  /** What a publish to a topic with subscribers reports (Bun: bytes, -1 backpressure, 0 dropped). */
  outcome = 1;

  publish = (topic: string, data: string): number => {
    this.published.push({ topic, data });
    const subscribers = this.topics.get(topic);
    if (!subscribers || subscribers.size === 0) return 0;
    for (const socket of subscribers) socket.write(data);
    return this.outcome;
  };
  send = (socket: FakeSocket, data: string): void => {
    if (socket.closed) throw new Error("fake transport: send on a closed socket");
    socket.write(data);
  };
  subscribe = (socket: FakeSocket, topic: string): void => {
    let subscribers = this.topics.get(topic);
    if (!subscribers) this.topics.set(topic, (subscribers = new Set()));
    subscribers.add(socket);
  };
  unsubscribe = (socket: FakeSocket, topic: string): void => {
    this.topics.get(topic)?.delete(socket);
  };
  isClosed = (socket: FakeSocket): boolean => socket.closed;

  /** Closes `socket` as Bun does: it leaves every topic at once. */
  close(socket: FakeSocket): void {
    socket.closed = true;
    for (const subscribers of this.topics.values()) subscribers.delete(socket);
  }
}

/** One call the broker has not answered yet. */
export interface PendingCall<T> {
  args: number[];
  resolve(value: T): void;
  reject(error: Error): void;
}

/** Calls of one broker method, in order; `next()` waits for the next one without polling. */
export class CallLog<T> {
  readonly #unclaimed: PendingCall<T>[] = [];
  readonly #waiters: Array<(call: PendingCall<T>) => void> = [];
  count = 0;

  add(args: number[]): Promise<T> {
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    const call = { args, resolve, reject };
    this.count++;
    const waiter = this.#waiters.shift();
    if (waiter) waiter(call);
    else this.#unclaimed.push(call);
    return promise;
  }

  next(): Promise<PendingCall<T>> {
    const call = this.#unclaimed.shift();
    return call ? Promise.resolve(call) : new Promise((resolve) => this.#waiters.push(resolve));
  }
}

/**
 * One channel's store and the engine's delivery. `deliversAll` true plays the embedded engine
 * (every publish is delivered); false plays a cluster engine (delivered only above the offset its
 * `watch` answered, and not at all while unwatched).
 */
export class FakeBroker implements HubBroker {
  readonly deliversAll: boolean;
  readonly stored: StoredEvent[] = [];
  epoch = "e1";
  trimmedThrough = 0;
  readonly watches = new CallLog<number>();
  readonly positions = new CallLog<Position>();
  readonly histories = new CallLog<HistoryPage>();
  readonly unwatched: string[] = [];
  /** Cluster mode: delivering above this offset since `watch` answered; null while unwatched. */
  #liveFrom: number | null = null;
  #delivered = 0;
  #deliver: DeliverFn | null = null;
  readonly #now: () => number;

  constructor(options: { deliversAll: boolean; now: () => number }) {
    this.deliversAll = options.deliversAll;
    this.#now = options.now;
  }

  start(deliver: DeliverFn): void {
    this.#deliver = deliver;
  }

  watch(_channel: string): Promise<number> {
    return this.watches.add([]);
  }
  unwatch(channel: string): void {
    this.unwatched.push(channel);
    this.#liveFrom = null;
  }
  position(_channel: string): Promise<Position> {
    return this.positions.add([]);
  }
  history(_channel: string, after: number, limit: number): Promise<HistoryPage> {
    return this.histories.add([after, limit]);
  }

  get top(): number {
    return this.stored.at(-1)?.offset ?? 0;
  }

  /** Answers a pending `watch` as an engine does: with the top, delivering everything above it. */
  answerWatch(call: PendingCall<number>, from = this.top): void {
    if (!this.deliversAll) {
      this.#liveFrom = from;
      this.#delivered = Math.max(this.#delivered, from);
    }
    call.resolve(from);
  }

  /** The page a read made now returns: retained events after `after`, at most `limit`. */
  page(after: number, limit: number): HistoryPage {
    const events = this.stored.filter((e) => e.offset > after && e.offset > this.trimmedThrough).slice(0, limit);
    return { epoch: this.epoch, offset: this.top, trimmedThrough: this.trimmedThrough, events };
  }

  /** Answers a pending `history` with the page as stored now. */
  answerHistory(call: PendingCall<HistoryPage>, limit = call.args[1]!): void {
    call.resolve(this.page(call.args[0]!, limit));
  }

  /** Stores `n` events without delivering them yet (a cluster node lagging behind the store). */
  append(channel: string, n = 1, options: { critical?: boolean } = {}): void {
    for (let i = 0; i < n; i++) {
      const offset = this.top + 1;
      const ts = this.#now();
      const frame = eventFrame({ channel, offset, event: "e", dataJson: "{}", critical: options.critical ?? false, ts });
      this.stored.push({ channel, offset, event: "e", critical: options.critical ?? false, coalesce: null, ts, frame });
    }
  }

  /** Delivers stored events up to `through`, one `deliver` call per event, as the engine may. */
  deliverThrough(channel: string, through = this.top): void {
    for (const e of this.stored) {
      if (e.offset <= this.#delivered || e.offset > through) continue;
      this.#delivered = e.offset;
      if (this.deliversAll || (this.#liveFrom !== null && e.offset > this.#liveFrom)) this.#deliver?.(channel, [e], this.epoch);
    }
  }

  /** Stores `n` events and delivers them: an ordinary publish. */
  publish(channel: string, n = 1, options: { critical?: boolean } = {}): void {
    this.append(channel, n, options);
    this.deliverThrough(channel);
  }

  /** The channel lost its history (a cluster store dropped it): a new epoch, offsets from 1. */
  resetEpoch(epoch: string): void {
    this.epoch = epoch;
    this.stored.length = 0;
    this.#delivered = 0;
    this.trimmedThrough = 0;
    if (this.#liveFrom !== null) this.#liveFrom = 0;
  }
}
