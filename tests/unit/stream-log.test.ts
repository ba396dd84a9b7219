/**
 * The stream log and the replay collapse (PROTOCOL §8) on hand-made stored events: one live frame
 * per stream per batch at the last append's place, offsets strictly increasing around other events,
 * snapshots from the index, pruning of idle streams, and the collapse of a replay.
 */
import { describe, expect, test } from "bun:test";
import { appendData, endData, startData } from "../../src/delivery/stream-frames.ts";
import { StreamLog } from "../../src/delivery/stream-log.ts";
import { collapseStreams } from "../../src/delivery/stream-replay.ts";
import type { HistoryPage, StoredEvent } from "../../src/engine/types.ts";
import { eventFrame } from "../../src/protocol/serializer.ts";

const CHANNEL = "user:u";

function stored(offset: number, event: string, dataJson: string, ts = 1000 + offset): StoredEvent {
  return { channel: CHANNEL, offset, event, critical: true, coalesce: null, ts, frame: eventFrame({ channel: CHANNEL, offset, event, dataJson, critical: true, ts }) };
}
const start = (offset: number, stream: string, text = "") => stored(offset, "stream.start", startData({ stream, text }));
const append = (offset: number, stream: string, text: string, ts?: number) => stored(offset, "stream.append", appendData(stream, text), ts);
const end = (offset: number, stream: string) => stored(offset, "stream.end", endData(stream, "complete", null));
const other = (offset: number) => stored(offset, "note", '{"n":1}');

const frames = (events: StoredEvent[]) => events.map((e) => JSON.parse(e.frame) as Record<string, unknown>);
const brief = (events: StoredEvent[]) => frames(events).map((f) => [f.event, f.offset, f.stream ?? null, f.text ?? null]);

/** A log whose loader has `history` as the channel's store. */
function log(history: StoredEvent[] = [], open: Array<{ stream: string; after: number }> = []) {
  let reads = 0;
  const streamLog = new StreamLog({
    loader: {
      openStreams: async () => open,
      history: async (_channel, after, limit): Promise<HistoryPage> => {
        reads++;
        const events = history.filter((e) => e.offset > after).slice(0, limit);
        return { epoch: "e", offset: history.at(-1)?.offset ?? 0, events, trimmedThrough: 0 };
      },
    },
    pageSize: 3,
  });
  return { streamLog, reads: () => reads };
}

describe("StreamLog.live", () => {
  test("events without streams pass as the same array", () => {
    const events = [other(1), other(2)];
    expect(log().streamLog.live(CHANNEL, events)).toBe(events);
  });

  test("appends of one batch to one stream leave as one frame at the last one's place, around other events", () => {
    const { streamLog } = log();
    const out = streamLog.live(CHANNEL, [start(1, "a", "x"), append(2, "a", "1"), other(3), append(4, "b", "B"), append(5, "a", "2"), end(6, "b")]);
    expect(brief(out)).toEqual([
      ["stream.start", 1, "a", "x"],
      ["note", 3, null, null],
      ["stream.append", 4, "b", "B"],
      ["stream.append", 5, "a", "12"],
      ["stream.end", 6, "b", null],
    ]);
    const offsets = out.map((e) => e.offset);
    expect(offsets).toEqual([...offsets].sort((p, q) => p - q));
    expect(out.find((e) => e.event === "stream.append")!.critical).toBe(false);
  });

  test("snapshots hold the whole text of open streams known from their start; textAfter slices the index", () => {
    const { streamLog } = log();
    streamLog.live(CHANNEL, [start(1, "a", "He"), append(2, "a", "ll"), append(3, "a", "o")]);
    streamLog.live(CHANNEL, [append(4, "orphan", "?")]);
    expect(frames(streamLog.snapshots(CHANNEL).map((frame) => ({ frame }) as StoredEvent))).toEqual([
      expect.objectContaining({ event: "stream.snapshot", stream: "a", text: "Hello", status: "streaming", offset: 3 }),
    ]);
    expect([0, 1, 2, 3].map((o) => streamLog.textAfter(CHANNEL, "a", o))).toEqual(["Hello", "llo", "o", ""]);
    streamLog.live(CHANNEL, [end(5, "a")]);
    expect(streamLog.snapshots(CHANNEL)).toEqual([]);
  });

  test("ensure reads a stream it did not see start from history once, merging live appends", async () => {
    const history = [start(1, "a", "A"), append(2, "a", "B"), other(3), append(4, "a", "C"), append(5, "a", "D")];
    const { streamLog, reads } = log(history, [{ stream: "a", after: 0 }]);
    // Delivered live before anyone joined: offsets 5 (also in history) and 6.
    streamLog.live(CHANNEL, [append(5, "a", "D")]);
    streamLog.live(CHANNEL, [append(6, "a", "E")]);
    await streamLog.ensure(CHANNEL);
    expect(frames(streamLog.snapshots(CHANNEL).map((frame) => ({ frame }) as StoredEvent))[0]).toMatchObject({ text: "ABCDE", offset: 6 });
    const readsAfterLoad = reads();
    await streamLog.ensure(CHANNEL);
    expect(reads()).toBe(readsAfterLoad);
  });

  test("release keeps a channel loaded only while it has open streams", async () => {
    let lookups = 0;
    const streamLog = new StreamLog({
      loader: {
        openStreams: async () => (lookups++, []),
        history: async () => ({ epoch: "e", offset: 0, events: [], trimmedThrough: 0 }),
      },
    });
    await streamLog.ensure(CHANNEL);
    await streamLog.ensure(CHANNEL);
    expect(lookups).toBe(1);
    streamLog.release(CHANNEL);
    await streamLog.ensure(CHANNEL);
    expect(lookups).toBe(2);
    streamLog.live(CHANNEL, [start(1, "a", "x")]);
    streamLog.release(CHANNEL);
    await streamLog.ensure(CHANNEL);
    expect(lookups).toBe(2);
  });

  test("prune forgets idle streams; the next ensure reads them again", async () => {
    const history = [start(1, "a", "A"), append(2, "a", "B", 20)];
    const { streamLog } = log(history, [{ stream: "a", after: 0 }]);
    streamLog.live(CHANNEL, history);
    streamLog.prune(100);
    expect(streamLog.size).toBe(0);
    await streamLog.ensure(CHANNEL);
    expect(frames(streamLog.snapshots(CHANNEL).map((frame) => ({ frame }) as StoredEvent))[0]).toMatchObject({ text: "AB" });
  });
});

describe("collapseStreams", () => {
  test("a stream whose start is in range becomes one snapshot where its last event sits", () => {
    expect(brief(collapseStreams([other(1), start(2, "a", "x"), append(3, "a", "y"), other(4), append(5, "a", "z"), other(6)]))).toEqual([
      ["note", 1, null, null],
      ["note", 4, null, null],
      ["stream.snapshot", 5, "a", "xyz"],
      ["note", 6, null, null],
    ]);
  });

  test("from inside a stream: one append at the last append's place, then its end at its own", () => {
    expect(brief(collapseStreams([append(3, "a", "y"), other(4), append(5, "a", "z"), other(6), end(7, "a")]))).toEqual([
      ["note", 4, null, null],
      ["stream.append", 5, "a", "yz"],
      ["note", 6, null, null],
      ["stream.end", 7, "a", null],
    ]);
  });

  test("an ended stream is one critical snapshot; nothing after its end counts", () => {
    const out = collapseStreams([start(1, "a", "x"), append(2, "a", "y"), end(3, "a"), append(4, "a", "late")]);
    expect(frames(out)).toEqual([expect.objectContaining({ event: "stream.snapshot", offset: 3, text: "xy", status: "complete", critical: true })]);
  });

  test("a plain event that only borrows a stream event's name passes as it is", () => {
    const plain = stored(1, "stream.append", '{"something":"else"}');
    expect(collapseStreams([plain])).toEqual([plain]);
  });
});
