/**
 * Replay and history of channels that carry agent streams (PROTOCOL §8): the stored events after
 * a `since` become what a late reader should see. A stream whose start is in the range becomes one
 * `stream.snapshot` (the whole text; after its end, the stream's one critical event); a stream
 * whose start is before `since` becomes one `stream.append` holding the appends the reader missed,
 * then its `stream.end` if it ended. Every other event passes as it is. Each frame keeps the place
 * of the last event it stands for, so offsets stay strictly increasing (§5).
 */
import type { StoredEvent } from "../engine/types.ts";
import { StreamEvent } from "../protocol/streams.ts";
import { appendFrame, asEvent, endFrame, isStreamEvent, readStreamRecord, snapshotFrame, type FramePlace, type StreamRecord } from "./stream-frames.ts";

interface Collapsing {
  start: Extract<StreamRecord, { kind: "start" }> | null;
  texts: string[];
  /** Slot of the latest start or append, and where it sits. */
  textSlot: number;
  textAt: FramePlace | null;
  end: Extract<StreamRecord, { kind: "end" }> | null;
  endSlot: number;
  endAt: FramePlace | null;
}

/**
 * Collapses the stream events of `events` (one channel, offset order) as a late reader sees them.
 * Work is linear in `events`; nothing is read from the store.
 *
 * @example
 * collapseStreams(page.events) // [start, append "He", append "llo"] → [snapshot "Hello"]
 */
export function collapseStreams(events: readonly StoredEvent[]): StoredEvent[] {
  let streams: Map<string, Collapsing> | null = null;
  const slots: (StoredEvent | null)[] = [];
  for (const e of events) {
    const r = isStreamEvent(e.event) ? readStreamRecord(e) : null;
    if (r === null) {
      slots.push(e);
      continue;
    }
    streams ??= new Map();
    let s = streams.get(r.stream);
    if (s === undefined) streams.set(r.stream, (s = { start: null, texts: [], textSlot: -1, textAt: null, end: null, endSlot: -1, endAt: null }));
    // Nothing of a stream counts after its end (an append racing the end on another node).
    if (s.end !== null) continue;
    const at: FramePlace = { channel: e.channel, offset: e.offset, ts: e.ts };
    if (r.kind === "end") {
      s.end = r;
      s.endAt = at;
      s.endSlot = slots.length;
    } else {
      if (r.kind === "start") s.start = r;
      s.texts.push(r.text);
      if (s.textSlot >= 0) slots[s.textSlot] = null;
      s.textSlot = slots.length;
      s.textAt = at;
    }
    slots.push(null);
  }
  if (streams === null) return slots as StoredEvent[];
  for (const [stream, s] of streams) render(stream, s, slots);
  const out: StoredEvent[] = [];
  for (const e of slots) if (e !== null) out.push(e);
  return out;
}

function render(stream: string, s: Collapsing, slots: (StoredEvent | null)[]): void {
  const text = s.texts.join("");
  if (s.start !== null) {
    // The reader has nothing of this stream: one snapshot, where its last event sits.
    const at = s.endAt ?? s.textAt!;
    const status = s.end?.status ?? "streaming";
    const frame = snapshotFrame(at, { stream, text, status, dataJson: s.start.dataJson, resultJson: s.end?.dataJson });
    if (s.end !== null) slots[s.textSlot] = null;
    slots[s.end !== null ? s.endSlot : s.textSlot] = asEvent(at, StreamEvent.Snapshot, frame, s.end !== null);
    return;
  }
  if (s.textAt !== null) slots[s.textSlot] = asEvent(s.textAt, StreamEvent.Append, appendFrame(s.textAt, stream, JSON.stringify(text)), false);
  if (s.end !== null) slots[s.endSlot] = asEvent(s.endAt!, StreamEvent.End, endFrame(s.endAt!, s.end), true);
}
