/**
 * The client's channels: handlers, and per channel the epoch and last delivered offset that
 * dedupe replays and become the next `since`. Positions are persisted in the `OffsetStore`.
 */
import type { OffsetStore } from "./offset-store.ts";
import type { CourierEvent, EventFrame, EventHandler, Position, Recovery } from "./types.ts";

/** One `subscribe()` call; distinct even when the same handler is passed twice. */
export interface Registration {
  handler: EventHandler;
}

interface ChannelState {
  registrations: Set<Registration>;
  /** Unknown until the first `subscribed` (or a stored/explicit `since`). */
  epoch: string | undefined;
  offset: number;
}

/** What a `subscribed` frame or a history page says about a channel's stream. */
export interface StreamHead {
  epoch: string;
  offset: number;
  recovered?: boolean;
  reason?: string;
}

/**
 * Channel bookkeeping shared by the WebSocket and polling paths.
 *
 * @example
 * const subs = new Subscriptions(memoryOffsetStore());
 * const { registration } = subs.add("user:a", (e) => console.log(e));
 * subs.reconcile("user:a", { epoch: "e1", offset: 0 });
 * subs.accept({ type: "event", channel: "user:a", offset: 1, event: "x", data: null, ts: 0 }); // CourierEvent
 */
export class Subscriptions {
  #channels = new Map<string, ChannelState>();
  #store: OffsetStore;

  /**
   * @example
   * new Subscriptions(localStorageOffsetStore());
   */
  constructor(store: OffsetStore) {
    this.#store = store;
  }

  /**
   * Adds a handler; `first` says the channel is new (a `subscribe` must go out). A new channel
   * starts from `since`, else from the store.
   *
   * @example
   * const { first, registration } = subs.add("job:1", handler, { epoch: "e", offset: 10 });
   */
  add(channel: string, handler: EventHandler, since?: Position): { first: boolean; registration: Registration } {
    const registration: Registration = { handler };
    const existing = this.#channels.get(channel);
    if (existing) {
      existing.registrations.add(registration);
      return { first: false, registration };
    }
    const start = since ?? this.#store.get(channel);
    this.#channels.set(channel, {
      registrations: new Set([registration]),
      epoch: start?.epoch,
      offset: start?.offset ?? 0,
    });
    return { first: true, registration };
  }

  /**
   * Removes one registration; true when it was the channel's last (an `unsubscribe` must go out).
   *
   * @example
   * if (subs.remove("job:1", registration)) send({ type: "unsubscribe", channel: "job:1" });
   */
  remove(channel: string, registration: Registration): boolean {
    const state = this.#channels.get(channel);
    if (!state || !state.registrations.delete(registration)) return false;
    if (state.registrations.size > 0) return false;
    this.#channels.delete(channel);
    return true;
  }

  /**
   * Forgets `channel` with all its handlers (the server took it away); false when unknown. Its
   * stored position stays: a later `subscribe` resumes from it.
   *
   * @example
   * if (subs.drop("public:lobby")) emit("unsubscribed", { channel: "public:lobby", reason: "server" });
   */
  drop(channel: string): boolean {
    return this.#channels.delete(channel);
  }

  /** Subscribed channel names. @example for (const c of subs.channels()) resubscribe(c); */
  channels(): string[] {
    return [...this.#channels.keys()];
  }

  /** Whether `channel` has handlers. @example subs.has("user:a"); */
  has(channel: string): boolean {
    return this.#channels.has(channel);
  }

  /**
   * The `since` of the next subscribe or poll, when the epoch is known.
   *
   * @example
   * subs.position("user:a"); // { epoch: "e1", offset: 41 }
   */
  position(channel: string): Position | undefined {
    const state = this.#channels.get(channel);
    return state?.epoch === undefined ? undefined : { epoch: state.epoch, offset: state.offset };
  }

  /**
   * Aligns tracking with the server's view of the stream (`offset` is its head). A head that
   * carries `recovered` answers a `since` and, unless it says `epoch_changed`/`offset_ahead`, is
   * followed by the replay after that `since`; one without answers a bare subscribe (live events
   * only). So: same epoch: keep our offset, the replay is deduped against it (a head below it,
   * `offset_ahead`, restarts there). Another or unknown epoch: restart at the head when nothing
   * is replayed, else at 0: the server replays from its own position (a restored session).
   * Returns the recovery to surface, when the head says one.
   *
   * @example
   * subs.reconcile("user:a", { epoch: "e2", offset: 3, recovered: false, reason: "epoch_changed" });
   * // { channel: "user:a", recovered: false, reason: "epoch_changed" }
   */
  reconcile(channel: string, head: StreamHead): Recovery | undefined {
    const state = this.#channels.get(channel);
    if (!state) return undefined;
    const replayFollows = head.recovered !== undefined && head.reason !== "epoch_changed" && head.reason !== "offset_ahead";
    if (state.epoch === head.epoch) {
      if (head.offset < state.offset) state.offset = head.offset;
    } else {
      state.epoch = head.epoch;
      state.offset = replayFollows ? 0 : head.offset;
    }
    this.#store.set(channel, { epoch: state.epoch, offset: state.offset });
    if (head.recovered === undefined) return undefined;
    return head.recovered || head.reason === undefined
      ? { channel, recovered: head.recovered }
      : { channel, recovered: false, reason: head.reason };
  }

  /**
   * Dedupe: returns the event to deliver and advances the channel's offset, or undefined for an
   * unknown channel or an offset at or below the last one seen in this epoch.
   *
   * @example
   * subs.accept(frame)?.offset;
   */
  accept(frame: EventFrame): CourierEvent | undefined {
    const state = this.#channels.get(frame.channel);
    if (!state || !Number.isSafeInteger(frame.offset) || frame.offset <= state.offset) return undefined;
    state.offset = frame.offset;
    return {
      channel: frame.channel,
      epoch: state.epoch,
      offset: frame.offset,
      event: frame.event,
      data: frame.data,
      critical: frame.critical === true,
      ts: frame.ts,
    };
  }

  /**
   * The handlers of `channel`, snapshotted so that handlers may unsubscribe while called.
   *
   * @example
   * for (const h of subs.handlers("user:a")) h(event);
   */
  handlers(channel: string): EventHandler[] {
    const state = this.#channels.get(channel);
    return state ? [...state.registrations].map((r) => r.handler) : [];
  }

  /**
   * Persists a processed event's position (after its handlers ran).
   *
   * @example
   * subs.commit(event);
   */
  commit(event: CourierEvent): void {
    if (event.epoch !== undefined) this.#store.set(event.channel, { epoch: event.epoch, offset: event.offset });
  }
}
