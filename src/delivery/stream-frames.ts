/**
 * Agent stream events (PROTOCOL §8) as stored and as sent. A stream event is stored like any
 * event (one offset each, group-committed) under the engine event names `stream.start`,
 * `stream.append` and `stream.end`, with its fields in `data`; subscribers never see that stored
 * form: live delivery, replay and `/v1/history` render the §8 frames (`stream`, `text`, `status`
 * at the top level) from it. Each renderer is one concatenation: the per-append cost is the
 * token plus a constant envelope.
 */
import type { StoredEvent } from "../engine/types.ts";
import { StreamEvent, type StreamStatus } from "../protocol/streams.ts";

/** A stored stream event, read back from its `data`. */
export type StreamRecord =
  | { kind: "start"; stream: string; name?: string; dataJson: string; text: string }
  | { kind: "append"; stream: string; text: string }
  | { kind: "end"; stream: string; status: StreamStatus; dataJson: string };

/** What a stored start is built from. */
export interface StartParts {
  stream: string;
  /** The stream's own event name, when the producer gave one (the start frame carries it). */
  name?: string;
  data?: unknown;
  text?: string;
}

/** The stored `data` of a stream start. */
export function startData(p: StartParts): string {
  return JSON.stringify({ stream: p.stream, name: p.name, data: p.data ?? null, text: p.text ?? "" });
}

/** The stored `data` of one append. */
export function appendData(stream: string, text: string): string {
  return '{"stream":' + JSON.stringify(stream) + ',"text":' + JSON.stringify(text) + "}";
}

/** The stored `data` of a stream's end. */
export function endData(stream: string, status: StreamStatus, data: unknown): string {
  return JSON.stringify({ stream, status, data: data ?? null });
}

/** Whether a stored event is one of the three stream events (a cheap check, no parsing). */
export function isStreamEvent(event: string): boolean {
  return event === StreamEvent.Append || event === StreamEvent.Start || event === StreamEvent.End;
}

/**
 * Reads a stored stream event's fields, or null when it only carries a stream event's name (a
 * plain publish of an event called `stream.append` is passed on as it is).
 */
export function readStreamRecord(e: StoredEvent): StreamRecord | null {
  let data: Record<string, unknown>;
  try {
    data = (JSON.parse(e.frame) as { data: Record<string, unknown> }).data;
  } catch {
    return null;
  }
  if (typeof data !== "object" || data === null || typeof data.stream !== "string") return null;
  const stream = data.stream;
  switch (e.event) {
    case StreamEvent.Append:
      return typeof data.text === "string" ? { kind: "append", stream, text: data.text } : null;
    case StreamEvent.Start: {
      const start: StreamRecord = { kind: "start", stream, dataJson: JSON.stringify(data.data ?? null), text: typeof data.text === "string" ? data.text : "" };
      if (typeof data.name === "string") start.name = data.name;
      return start;
    }
    case StreamEvent.End:
      return { kind: "end", stream, status: data.status as StreamStatus, dataJson: JSON.stringify(data.data ?? null) };
  }
  return null;
}

/** Where a frame sits on its channel. */
export interface FramePlace {
  channel: string;
  offset: number;
  ts: number;
}

function head(at: FramePlace, event: string, stream: string): string {
  return '{"type":"event","channel":"' + at.channel + '","offset":' + at.offset + ',"event":"' + event + '","stream":' + JSON.stringify(stream);
}

/** `{"type":"event","event":"stream.start","stream","data","text",…}` (critical). */
export function startFrame(at: FramePlace, r: Extract<StreamRecord, { kind: "start" }>): string {
  return head(at, r.name ?? StreamEvent.Start, r.stream) + ',"data":' + r.dataJson + ',"text":' + JSON.stringify(r.text) + ',"critical":true,"ts":' + at.ts + "}";
}

/** `{"type":"event","event":"stream.append","stream","text",…}`: `textJson` is already quoted. */
export function appendFrame(at: FramePlace, stream: string, textJson: string): string {
  return head(at, StreamEvent.Append, stream) + ',"text":' + textJson + ',"ts":' + at.ts + "}";
}

/** `{"type":"event","event":"stream.end","stream","status","data",…}` (critical). */
export function endFrame(at: FramePlace, r: Extract<StreamRecord, { kind: "end" }>): string {
  return head(at, StreamEvent.End, r.stream) + ',"status":"' + r.status + '","data":' + r.dataJson + ',"critical":true,"ts":' + at.ts + "}";
}

/** What a snapshot says about its stream. */
export interface SnapshotParts {
  stream: string;
  text: string;
  /** `streaming` while the stream is open, else how it ended. */
  status: StreamStatus | "streaming";
  /** The start's `data`. */
  dataJson: string;
  /** The end's `data`, once ended. */
  resultJson?: string;
}

/**
 * `{"type":"event","event":"stream.snapshot","stream","text","status","offset",…}`: the whole text
 * up to `offset`. An ended stream's snapshot is the stream's one critical event in history.
 */
export function snapshotFrame(at: FramePlace, p: SnapshotParts): string {
  const ended = p.status !== "streaming";
  return (
    head(at, StreamEvent.Snapshot, p.stream) + ',"text":' + JSON.stringify(p.text) + ',"status":"' + p.status + '","data":' + p.dataJson +
    (ended ? ',"result":' + (p.resultJson ?? "null") + ',"critical":true' : "") + ',"ts":' + at.ts + "}"
  );
}

/** A rendered frame in the shape the hub fans out and replays. */
export function asEvent(at: FramePlace, event: string, frame: string, critical: boolean): StoredEvent {
  return { channel: at.channel, offset: at.offset, event, critical, coalesce: null, ts: at.ts, frame };
}
