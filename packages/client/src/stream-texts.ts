/**
 * Agent streams as the app sees them (PROTOCOL §8): the current text per stream, merged from a
 * `stream.start`, its `stream.append`s, a `stream.snapshot` (the whole text so far, on a join or a
 * history page) and its `stream.end`. Each stream keeps the offset it was last brought to, so a
 * frame it already holds (a replay, a late snapshot) changes nothing.
 */
import type { EventFrame } from "./protocol/frames.ts";

/** How a stream stands: `streaming` until its end says how it ended. */
export type AgentStreamStatus = "streaming" | "complete" | "cancelled" | "failed";

/** One agent stream, handed to `client.on("stream", …)` each time its text or status changes. */
export interface AgentStream {
  channel: string;
  /** The stream id. */
  stream: string;
  /** The whole text so far. */
  text: string;
  status: AgentStreamStatus;
  /** Offset of the last frame applied. */
  offset: number;
  /** The start's `data` (when seen). */
  data?: unknown;
  /** The end's `data`, once ended. */
  result?: unknown;
  /**
   * True when this client never saw the stream's start or a snapshot (it resumed with `since`
   * from a persisted position, after a reload): `text` is only what arrived since.
   */
  partial?: true;
}

const APPEND = "stream.append";
const END = "stream.end";
const SNAPSHOT = "stream.snapshot";

/** The stream fields an event frame may carry. */
type StreamFrame = EventFrame & { stream: string; text?: unknown; status?: unknown; result?: unknown };

/**
 * @example
 * const texts = new StreamTexts();
 * const changed = texts.apply(frame); // an AgentStream, or undefined when nothing changed
 */
export class StreamTexts {
  readonly #streams = new Map<string, AgentStream>();

  /** Whether `frame` belongs to an agent stream. */
  static is(frame: EventFrame): frame is StreamFrame {
    return typeof (frame as { stream?: unknown }).stream === "string";
  }

  /** Applies one frame; returns the stream when its text or status changed. */
  apply(frame: StreamFrame): AgentStream | undefined {
    const key = `${frame.channel}\n${frame.stream}`;
    const known = this.#streams.get(key);
    if (known !== undefined && frame.offset <= known.offset) return undefined;
    const text = typeof frame.text === "string" ? frame.text : "";
    // An append or end of a stream whose start this client never saw.
    const unseen = (): AgentStream => ({ channel: frame.channel, stream: frame.stream, text: "", status: "streaming", offset: 0, partial: true });
    let s: AgentStream;
    if (frame.event === APPEND) {
      s = known ?? unseen();
      s.text += text;
    } else if (frame.event === END) {
      s = known ?? unseen();
      s.status = isEnded(frame.status) ? frame.status : "complete";
      s.result = frame.data;
    } else if (frame.event === SNAPSHOT) {
      s = { channel: frame.channel, stream: frame.stream, text, status: isEnded(frame.status) ? frame.status : "streaming", offset: 0, data: frame.data };
      if (frame.result !== undefined) s.result = frame.result;
    } else {
      // The start, under `stream.start` or the producer's own event name.
      s = { channel: frame.channel, stream: frame.stream, text, status: "streaming", offset: 0, data: frame.data };
    }
    s.offset = frame.offset;
    // Ended streams are not kept: their last state is handed out once, and memory stays bounded.
    if (s.status === "streaming") this.#streams.set(key, s);
    else this.#streams.delete(key);
    return { ...s };
  }

  /** The open streams this client knows, e.g. to render after a reload. */
  open(): AgentStream[] {
    return [...this.#streams.values()].map((s) => ({ ...s }));
  }

  /** Forgets a channel's streams (its last handler left). */
  drop(channel: string): void {
    for (const [key, s] of this.#streams) if (s.channel === channel) this.#streams.delete(key);
  }
}

function isEnded(status: unknown): status is "complete" | "cancelled" | "failed" {
  return status === "complete" || status === "cancelled" || status === "failed";
}
