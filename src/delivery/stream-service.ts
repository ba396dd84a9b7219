/**
 * Agent streams (PROTOCOL §8) above the engine: start, append, end and cancel, through the one
 * publish pipeline (so every append is group-committed and answered only once stored, like any
 * event) and the `RecordStore` port (so every node knows which streams are open). Works the same
 * on both engines; nothing here touches an engine's internals.
 *
 * Records: `stream:<channel>:<id>` holds a stream's state (open, or how it ended and at which
 * offset); `streams:<channel>` lists the channel's open streams with an offset each start comes
 * after, so a node that did not see a stream start finds it (StreamLog.ensure).
 * Appends cost one record read and one publish, whatever the text so far.
 */
import type { Broker, PublishItem, PublishOutcome, RecordStore } from "../engine/types.ts";
import { StreamEvent, type StreamStatus } from "../protocol/streams.ts";
import { appendData, endData, startData } from "./stream-frames.ts";

/**
 * An append or end to a stream that is unknown or already ended: the routes answer 409
 * `conflict`, a cancel answers `cancelled:false`.
 *
 * @example
 * if (error instanceof StreamConflictError && error.reason === "ended") log.info("late append", { stream: error.stream });
 */
export class StreamConflictError extends Error {
  override readonly name = "StreamConflictError";
  constructor(
    readonly channel: string,
    readonly stream: string,
    readonly reason: "unknown" | "ended",
  ) {
    super(reason === "unknown" ? `stream ${stream} is unknown on ${channel}` : `stream ${stream} on ${channel} has ended`);
  }
}

/** Who is told that a subscriber cancelled a stream: its producer. */
export type CancelListener = (cancel: { channel: string; stream: string; user: string }) => void;

export interface StreamServiceOptions {
  /** The publish pipeline (src/server/publisher.ts). */
  publish: (items: PublishItem[]) => Promise<PublishOutcome[]>;
  records: RecordStore;
  broker: Pick<Broker, "position">;
  /** How long a stream's records live: the critical retention. */
  retentionMs: number;
  onStarted?: () => void;
  onEnded?: (status: StreamStatus) => void;
  onAppends?: (count: number) => void;
}

export interface StartRequest {
  channel: string;
  event?: string;
  data?: unknown;
  text?: string;
  idempotencyKey?: string;
}

export interface StartedStream {
  channel: string;
  stream: string;
  offset: number;
  epoch: string;
}

/** A stream's record: open, or ended with its end's offset and idempotency key. */
interface StreamState {
  s: "open" | StreamStatus;
  o?: number;
  k?: string;
}

/**
 * @example
 * const streams = new StreamService({ publish: (items) => publisher.publish(items), records: engine, broker: engine, retentionMs: 86_400_000 });
 * const { stream } = await streams.start({ channel: "user:alice", text: "He" });
 * await streams.append("user:alice", stream, ["llo"]);
 * await streams.end("user:alice", stream, "complete");
 */
export class StreamService {
  readonly #o: StreamServiceOptions;
  /** Per channel: starts and ends run one at a time (they rewrite the channel's open list). */
  readonly #locks = new Map<string, Promise<unknown>>();
  /** Appends in flight per stream: an end waits for them, so none lands after it. */
  readonly #inflight = new Map<string, { count: number; drained: PromiseWithResolvers<void> | null }>();
  /** Streams this node is ending: later appends are refused at once. */
  readonly #closing = new Set<string>();
  readonly #cancelListeners = new Set<CancelListener>();

  constructor(options: StreamServiceOptions) {
    this.#o = options;
  }

  /** Starts a stream; answers once its `stream.start` is stored. */
  async start(request: StartRequest): Promise<StartedStream> {
    const { channel, idempotencyKey } = request;
    const idemKey = idempotencyKey === undefined ? null : `stream-idem:${idempotencyKey}`;
    if (idemKey !== null) {
      const first = await this.#o.records.getRecord(idemKey);
      if (first !== null) return JSON.parse(first) as StartedStream;
    }
    return this.#locked(channel, async () => {
      const { offset: after } = await this.#o.broker.position(channel);
      const stream = newStreamId();
      await this.#putState(channel, stream, { s: "open" });
      await this.#updateOpen(channel, (open) => (open[stream] = after));
      const dataJson = startData({ stream, name: request.event, data: request.data, text: request.text });
      const [outcome] = await this.#o.publish([{ channel, event: StreamEvent.Start, dataJson, critical: true }]);
      const started: StartedStream = { channel, stream, offset: outcome!.offset, epoch: outcome!.epoch };
      if (idemKey !== null) await this.#o.records.putRecord(idemKey, JSON.stringify(started), this.#o.retentionMs);
      this.#o.onStarted?.();
      return started;
    });
  }

  /**
   * Appends `texts` in order, each with its own offset; answers the last one's once all are stored.
   *
   * @throws {StreamConflictError} when the stream is unknown or has ended.
   */
  async append(channel: string, stream: string, texts: readonly string[], idempotencyKey?: string): Promise<{ offset: number }> {
    const key = `${channel}\n${stream}`;
    if (this.#closing.has(key)) throw new StreamConflictError(channel, stream, "ended");
    // In flight from before the state read: an end on this node waits for it, so no append it
    // let through can land after the end.
    let inflight = this.#inflight.get(key);
    if (inflight === undefined) this.#inflight.set(key, (inflight = { count: 0, drained: null }));
    inflight.count++;
    try {
      const state = await this.#state(channel, stream);
      if (state === null) throw new StreamConflictError(channel, stream, "unknown");
      if (state.s !== "open") throw new StreamConflictError(channel, stream, "ended");
      const items: PublishItem[] = texts.map((text, i) => {
        const item: PublishItem = { channel, event: StreamEvent.Append, dataJson: appendData(stream, text), critical: true };
        if (idempotencyKey !== undefined) item.idempotencyKey = texts.length === 1 ? idempotencyKey : `${idempotencyKey}#${i}`;
        return item;
      });
      const outcomes = await this.#o.publish(items);
      this.#o.onAppends?.(items.length);
      return { offset: outcomes[outcomes.length - 1]!.offset };
    } finally {
      if (--inflight.count === 0) {
        this.#inflight.delete(key);
        inflight.drained?.resolve();
      }
    }
  }

  /**
   * Ends a stream with a critical `stream.end`. A retry with the same idempotency key answers the
   * first end's offset.
   *
   * @throws {StreamConflictError} when the stream is unknown or has ended.
   */
  end(channel: string, stream: string, status: StreamStatus, data?: unknown, idempotencyKey?: string): Promise<{ offset: number }> {
    const key = `${channel}\n${stream}`;
    return this.#locked(channel, async () => {
      this.#closing.add(key);
      try {
        const inflight = this.#inflight.get(key);
        if (inflight !== undefined) await (inflight.drained ??= Promise.withResolvers<void>()).promise;
        const state = await this.#state(channel, stream);
        if (state === null) throw new StreamConflictError(channel, stream, "unknown");
        if (state.s !== "open") {
          if (idempotencyKey !== undefined && state.k === idempotencyKey && state.o !== undefined) return { offset: state.o };
          throw new StreamConflictError(channel, stream, "ended");
        }
        const [outcome] = await this.#o.publish([{ channel, event: StreamEvent.End, dataJson: endData(stream, status, data), critical: true }]);
        const ended: StreamState = { s: status, o: outcome!.offset };
        if (idempotencyKey !== undefined) ended.k = idempotencyKey;
        await this.#putState(channel, stream, ended);
        await this.#updateOpen(channel, (open) => delete open[stream]);
        this.#o.onEnded?.(status);
        return { offset: outcome!.offset };
      } finally {
        this.#closing.delete(key);
      }
    });
  }

  /**
   * A subscriber's `cancel` (PROTOCOL §8): ends the stream `cancelled` at once and tells its
   * producer. Resolves false when the stream is unknown or had already ended.
   */
  async cancel(channel: string, stream: string, user: string): Promise<boolean> {
    try {
      await this.end(channel, stream, "cancelled", { by: user });
    } catch (error) {
      if (error instanceof StreamConflictError) return false;
      throw error;
    }
    for (const listener of this.#cancelListeners) {
      try {
        listener({ channel, stream, user });
      } catch {
        /* a producer's listener cannot undo the cancel */
      }
    }
    return true;
  }

  /** Registers a producer told about cancels; returns the unsubscribe function. */
  onCancel(listener: CancelListener): () => void {
    this.#cancelListeners.add(listener);
    return () => this.#cancelListeners.delete(listener);
  }

  /** The channel's open streams with an offset each start comes after (StreamLog's loader). */
  async openStreams(channel: string): Promise<Array<{ stream: string; after: number }>> {
    const open = await this.#o.records.getRecord(openKey(channel));
    if (open === null) return [];
    return Object.entries(JSON.parse(open) as Record<string, number>).map(([stream, after]) => ({ stream, after }));
  }

  async #state(channel: string, stream: string): Promise<StreamState | null> {
    const raw = await this.#o.records.getRecord(stateKey(channel, stream));
    return raw === null ? null : (JSON.parse(raw) as StreamState);
  }

  #putState(channel: string, stream: string, state: StreamState): Promise<void> {
    return this.#o.records.putRecord(stateKey(channel, stream), JSON.stringify(state), this.#o.retentionMs);
  }

  async #updateOpen(channel: string, change: (open: Record<string, number>) => void): Promise<void> {
    const raw = await this.#o.records.getRecord(openKey(channel));
    const open: Record<string, number> = raw === null ? Object.create(null) : Object.assign(Object.create(null), JSON.parse(raw));
    change(open);
    await this.#o.records.putRecord(openKey(channel), JSON.stringify(open), this.#o.retentionMs);
  }

  #locked<T>(channel: string, run: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(channel) ?? Promise.resolve();
    const next = previous.then(run, run);
    const settled = next.catch(() => {});
    this.#locks.set(channel, settled);
    settled.then(() => {
      if (this.#locks.get(channel) === settled) this.#locks.delete(channel);
    });
    return next;
  }
}

function stateKey(channel: string, stream: string): string {
  return `stream:${channel}:${stream}`;
}

function openKey(channel: string): string {
  return `streams:${channel}`;
}

/** 72 random bits, URL-safe: short on the wire (every append frame carries it). */
function newStreamId(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(9))).toString("base64url");
}
