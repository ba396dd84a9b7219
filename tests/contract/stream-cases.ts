/**
 * Agent streams (PROTOCOL §8) in the engine contract: the stream service and the stream log sit
 * above the engine ports (Broker, RecordStore), so every engine must give them what they rely on —
 * appends that keep their own offsets and survive trimming by count, records every node reads, and
 * history a node that never saw a stream start can rebuild its text from. Registered by
 * `engineContract`, so both engines run it.
 */
import { describe, expect, test } from "bun:test";
import { StreamLog } from "../../src/delivery/stream-log.ts";
import { collapseStreams } from "../../src/delivery/stream-replay.ts";
import { StreamConflictError, StreamService } from "../../src/delivery/stream-service.ts";
import type { Engine, StoredEvent } from "../../src/engine/types.ts";

type Setup = () => Promise<{ engine: Engine; clock: { now: number }; d: { calls: { channel: string; events: StoredEvent[] }[]; until(channel: string, offset: number): Promise<void> } }>;

const HOUR = 3_600_000;

function unique(prefix: string): string {
  return `${prefix}${crypto.randomUUID().slice(0, 8)}`;
}

function service(engine: Engine): StreamService {
  return new StreamService({ publish: (items) => engine.publish(items), records: engine, broker: engine, retentionMs: HOUR });
}

function logOn(engine: Engine, streams: StreamService): StreamLog {
  return new StreamLog({ loader: { openStreams: (c) => streams.openStreams(c), history: (c, a, l) => engine.history(c, a, l) }, pageSize: 4 });
}

function parse(events: StoredEvent[]) {
  return events.map((e) => JSON.parse(e.frame) as Record<string, unknown>);
}

export function streamCases(setup: Setup): void {
  describe("agent streams above the engine", () => {
    test("every append keeps its own offset and survives trimming by count; history collapses to one snapshot", async () => {
      const { engine, clock } = await setup();
      const streams = service(engine);
      const channel = unique("user:st");
      const { stream, offset } = await streams.start({ channel, text: "0" });
      expect(offset).toBe(1);
      const tokens = Array.from({ length: 9 }, (_, i) => String(i + 1));
      for (const t of tokens.slice(0, 4)) await streams.append(channel, stream, [t]);
      expect(await streams.append(channel, stream, tokens.slice(4))).toEqual({ offset: 10 });
      // historySize is 3 in the contract: stream events are kept anyway.
      await engine.trim(clock.now);
      const page = await engine.history(channel, 0, 100);
      expect(page.events.map((e) => e.offset)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(parse(collapseStreams(page.events)).map((f) => [f.event, f.offset, f.text, f.status])).toEqual([["stream.snapshot", 10, "0123456789", "streaming"]]);
      expect(parse(collapseStreams((await engine.history(channel, 7, 100)).events)).map((f) => [f.event, f.offset, f.text])).toEqual([["stream.append", 10, "789"]]);
    });

    test("after its end a stream is one critical event in history; later appends and ends conflict", async () => {
      const { engine } = await setup();
      const streams = service(engine);
      const channel = unique("user:st");
      const { stream } = await streams.start({ channel, data: { run: 1 } });
      await streams.append(channel, stream, ["a", "b"]);
      expect(await streams.end(channel, stream, "complete", { n: 2 })).toEqual({ offset: 4 });
      const collapsed = parse(collapseStreams((await engine.history(channel, 0, 100)).events));
      expect(collapsed).toEqual([
        expect.objectContaining({ event: "stream.snapshot", offset: 4, text: "ab", status: "complete", data: { run: 1 }, result: { n: 2 }, critical: true }),
      ]);
      expect(streams.append(channel, stream, ["c"])).rejects.toBeInstanceOf(StreamConflictError);
      expect(streams.end(channel, stream, "failed")).rejects.toBeInstanceOf(StreamConflictError);
      expect(streams.append(channel, "unknown", ["c"])).rejects.toMatchObject({ reason: "unknown" });
      expect(await streams.openStreams(channel)).toEqual([]);
    });

    test("an end waits for the appends already let in: none is stored after it", async () => {
      const { engine } = await setup();
      const streams = service(engine);
      const channel = unique("user:st");
      const { stream } = await streams.start({ channel });
      const appending = streams.append(channel, stream, ["racing"]);
      const ended = await streams.end(channel, stream, "complete");
      expect((await appending).offset).toBeLessThan(ended.offset);
      const late = streams.append(channel, stream, ["late"]);
      expect(late).rejects.toMatchObject({ reason: "ended" });
      await late.catch(() => {});
      expect((await engine.history(channel, 0, 100)).events.map((e) => e.event)).toEqual(["stream.start", "stream.append", "stream.end"]);
    });

    test("a node that never saw the start rebuilds the text from history, then follows live appends", async () => {
      const { engine, d } = await setup();
      const streams = service(engine);
      const channel = unique("user:st");
      const { stream } = await streams.start({ channel, text: "It " });
      // More than one history page (pageSize 4) before the cold node looks.
      await streams.append(channel, stream, ["was ", "a ", "dark ", "and ", "stormy "]);
      const other = unique("user:st");
      const ended = await streams.start({ channel: other, text: "gone" });
      await streams.end(other, ended.stream, "complete");
      // A cluster engine delivers only watched channels: this node watches, then loads (as the hub joins).
      await engine.watch(channel);
      const cold = logOn(engine, streams);
      await cold.ensure(channel);
      await cold.ensure(other);
      expect(parse(cold.snapshots(channel).map((frame) => ({ frame }) as StoredEvent))).toEqual([
        expect.objectContaining({ event: "stream.snapshot", stream, offset: 6, text: "It was a dark and stormy ", status: "streaming" }),
      ]);
      expect(cold.snapshots(other)).toEqual([]);
      await streams.append(channel, stream, ["night"]);
      await d.until(channel, 7);
      const delivered = d.calls.filter((c) => c.channel === channel).at(-1)!.events;
      expect(parse(cold.live(channel, delivered)).map((f) => [f.event, f.offset, f.text])).toEqual([["stream.append", 7, "night"]]);
      expect(cold.textAfter(channel, stream, 5)).toBe("stormy night");
    });

    test("open streams are records every node reads; ending one removes it", async () => {
      const { engine } = await setup();
      const first = service(engine);
      const second = service(engine);
      const channel = unique("user:st");
      const a = await first.start({ channel });
      const b = await first.start({ channel });
      expect((await second.openStreams(channel)).map((s) => s.stream).sort()).toEqual([a.stream, b.stream].sort());
      await second.append(channel, a.stream, ["from another node"]);
      await second.end(channel, a.stream, "failed");
      expect((await first.openStreams(channel)).map((s) => s.stream)).toEqual([b.stream]);
    });
  });
}
