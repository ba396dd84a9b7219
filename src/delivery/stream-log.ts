/**
 * This node's view of the open agent streams (PROTOCOL §8): per stream its text so far and a
 * compact index (offset → cumulative length per append), kept current by live delivery, so a
 * subscriber joining without `since` gets the whole text in one `stream.snapshot` that costs one
 * slice, never a replay of every append. Live delivery also goes through here: the appends of one
 * delivered batch (one server turn) to one stream leave as one `stream.append` frame. Per append
 * the work is constant: one small parse, one string append, two array pushes.
 *
 * A node that did not see a stream start (a restart, or a cluster node that just began watching
 * the channel) reads it once from history on the first join (`ensure`), merging what live delivery
 * brought meanwhile.
 */
import type { HistoryPage, StoredEvent } from "../engine/types.ts";
import { StreamEvent } from "../protocol/streams.ts";
import { appendFrame, asEvent, endFrame, isStreamEvent, readStreamRecord, snapshotFrame, startFrame, type FramePlace, type StreamRecord } from "./stream-frames.ts";

/** Where open streams are looked up when this node has not seen them start. */
export interface StreamLoader {
  /** The channel's open streams, each with an offset its start comes after. */
  openStreams(channel: string): Promise<Array<{ stream: string; after: number }>>;
  history(channel: string, after: number, limit: number): Promise<HistoryPage>;
}

export interface StreamLogOptions {
  loader: StreamLoader;
  /** Events per history read while loading a stream. @default 10_000 */
  pageSize?: number;
  /** Each snapshot sent on a join, with its text length. */
  onSnapshot?: (textLength: number) => void;
}

interface OpenStream {
  /** Null while only appends were seen (the start came before this node watched). */
  start: Extract<StreamRecord, { kind: "start" }> | null;
  text: string;
  offsets: number[];
  /** Cumulative text length after each entry of `offsets`. */
  ends: number[];
  at: FramePlace;
}

interface Merging {
  slot: number;
  texts: string[];
  at: FramePlace;
}

/**
 * @example
 * const log = new StreamLog({ loader: { openStreams, history: (c, a, l) => engine.history(c, a, l) } });
 * const frames = log.live("user:a", events); // what to fan out
 * await log.ensure("user:a");
 * log.snapshots("user:a"); // one stream.snapshot frame per open stream
 */
export class StreamLog {
  readonly #options: StreamLogOptions;
  readonly #open = new Map<string, Map<string, OpenStream>>();
  /** Channels whose open streams are all known from their start. */
  readonly #loaded = new Set<string>();
  readonly #loading = new Map<string, Promise<void>>();
  /** Streams ended while their channel was loading: a load must not bring them back. */
  readonly #endedWhileLoading = new Map<string, Set<string>>();

  constructor(options: StreamLogOptions) {
    this.#options = options;
  }

  /** Open streams known on this node (for stats). */
  get size(): number {
    let n = 0;
    for (const m of this.#open.values()) n += m.size;
    return n;
  }

  /**
   * Takes delivered events of one channel (offset order) and returns what to fan out: the same
   * array when none is a stream event, else with stream frames rendered and each stream's appends
   * merged into one frame at the last one's place.
   */
  live(channel: string, events: StoredEvent[]): StoredEvent[] {
    let out: (StoredEvent | null)[] | null = null;
    let merging: Map<string, Merging> | null = null;
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      if (!isStreamEvent(e.event)) {
        out?.push(e);
        continue;
      }
      out ??= events.slice(0, i);
      const r = readStreamRecord(e);
      if (r === null) {
        out.push(e);
        continue;
      }
      const at: FramePlace = { channel, offset: e.offset, ts: e.ts };
      this.#apply(channel, r, at);
      if (r.kind === "append") {
        merging ??= new Map();
        const m = merging.get(r.stream);
        if (m === undefined) merging.set(r.stream, { slot: out.length, texts: [r.text], at });
        else {
          out[m.slot] = null;
          m.slot = out.length;
          m.texts.push(r.text);
          m.at = at;
        }
        out.push(null);
      } else if (r.kind === "start") {
        out.push(asEvent(at, r.name ?? StreamEvent.Start, startFrame(at, r), true));
      } else {
        out.push(asEvent(at, StreamEvent.End, endFrame(at, r), true));
      }
    }
    if (out === null) return events;
    if (merging !== null) {
      for (const [stream, m] of merging) {
        const text = m.texts.length === 1 ? m.texts[0]! : m.texts.join("");
        out[m.slot] = asEvent(m.at, StreamEvent.Append, appendFrame(m.at, stream, JSON.stringify(text)), false);
      }
    }
    return out.filter((e): e is StoredEvent => e !== null);
  }

  /** One `stream.snapshot` frame per open stream of `channel` known from its start. */
  snapshots(channel: string): string[] {
    const open = this.#open.get(channel);
    if (open === undefined) return [];
    const frames: string[] = [];
    for (const [stream, s] of open) {
      if (s.start === null) continue;
      frames.push(snapshotFrame(s.at, { stream, text: s.text, status: "streaming", dataJson: s.start.dataJson }));
      this.#options.onSnapshot?.(s.text.length);
    }
    return frames;
  }

  /** The text of an open stream after `offset` (one slice through the index), or null if unknown. */
  textAfter(channel: string, stream: string, offset: number): string | null {
    const s = this.#open.get(channel)?.get(stream);
    if (s === undefined || s.start === null) return null;
    // Binary search: the last entry at or below `offset`.
    let lo = 0;
    let hi = s.offsets.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (s.offsets[mid]! <= offset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return s.text.slice(found < 0 ? 0 : s.ends[found]!);
  }

  /** Makes every open stream of `channel` known from its start (reads history once if needed). */
  ensure(channel: string): Promise<void> {
    if (this.#loaded.has(channel)) return Promise.resolve();
    let loading = this.#loading.get(channel);
    if (loading === undefined) {
      this.#endedWhileLoading.set(channel, new Set());
      loading = this.#load(channel).finally(() => {
        this.#loading.delete(channel);
        this.#endedWhileLoading.delete(channel);
      });
      this.#loading.set(channel, loading);
    }
    return loading;
  }

  /**
   * Forgets streams with no event since `before` (a producer that died without ending its stream
   * must not hold memory for the record's whole retention). Should one of them go on, the next
   * join reads it from history again.
   */
  prune(before: number): void {
    for (const [channel, open] of this.#open) {
      for (const [stream, s] of open) {
        if (s.at.ts >= before) continue;
        open.delete(stream);
        this.#loaded.delete(channel);
      }
      if (open.size === 0) this.#open.delete(channel);
    }
  }

  /**
   * This node's last subscriber of `channel` left while deliveries go on (the embedded engine):
   * its open streams stay current, but a channel with none is no longer remembered as loaded, so
   * the set of loaded channels grows only with channels that have subscribers or open streams.
   */
  release(channel: string): void {
    if (!this.#open.has(channel)) this.#loaded.delete(channel);
  }

  /** This node stopped receiving `channel` (a cluster node's last subscriber left): forget it. */
  forget(channel: string): void {
    this.#open.delete(channel);
    this.#loaded.delete(channel);
  }

  #apply(channel: string, r: StreamRecord, at: FramePlace): void {
    let open = this.#open.get(channel);
    if (r.kind === "end") {
      this.#endedWhileLoading.get(channel)?.add(r.stream);
      if (open?.delete(r.stream) && open.size === 0) this.#open.delete(channel);
      return;
    }
    if (open === undefined) this.#open.set(channel, (open = new Map()));
    if (r.kind === "start") {
      open.set(r.stream, { start: r, text: r.text, offsets: [at.offset], ends: [r.text.length], at });
      return;
    }
    let s = open.get(r.stream);
    if (s === undefined) open.set(r.stream, (s = { start: null, text: "", offsets: [], ends: [], at }));
    s.text += r.text;
    s.offsets.push(at.offset);
    s.ends.push(s.text.length);
    s.at = at;
  }

  async #load(channel: string): Promise<void> {
    const open = await this.#options.loader.openStreams(channel);
    for (const { stream, after } of open) {
      if (this.#open.get(channel)?.get(stream)?.start) continue;
      const built = await this.#read(channel, stream, after);
      if (built === null || this.#endedWhileLoading.get(channel)?.has(stream)) continue;
      const live = this.#open.get(channel)?.get(stream);
      if (live?.start) continue;
      if (live !== undefined) {
        // Appends delivered while reading: keep those past what the read saw.
        for (let i = 0; i < live.offsets.length; i++) {
          if (live.offsets[i]! <= built.at.offset) continue;
          built.text += live.text.slice(i === 0 ? 0 : live.ends[i - 1]!, live.ends[i]!);
          built.offsets.push(live.offsets[i]!);
          built.ends.push(built.text.length);
          built.at = live.at;
        }
      }
      let channelStreams = this.#open.get(channel);
      if (channelStreams === undefined) this.#open.set(channel, (channelStreams = new Map()));
      channelStreams.set(stream, built);
    }
    this.#loaded.add(channel);
  }

  /** The stream as history has it, or null when it ended or its start is gone. */
  async #read(channel: string, stream: string, after: number): Promise<OpenStream | null> {
    const pageSize = this.#options.pageSize ?? 10_000;
    let built: OpenStream | null = null;
    for (let cursor = after; ; ) {
      const page = await this.#options.loader.history(channel, cursor, pageSize);
      for (const e of page.events) {
        if (!isStreamEvent(e.event)) continue;
        const r = readStreamRecord(e);
        if (r === null || r.stream !== stream) continue;
        const at: FramePlace = { channel, offset: e.offset, ts: e.ts };
        if (r.kind === "end") return null;
        if (r.kind === "start") built = { start: r, text: r.text, offsets: [at.offset], ends: [r.text.length], at };
        else if (built !== null) {
          built.text += r.text;
          built.offsets.push(at.offset);
          built.ends.push(built.text.length);
          built.at = at;
        }
      }
      if (page.events.length < pageSize) return built;
      cursor = page.events[page.events.length - 1]!.offset;
    }
  }
}
