import { afterAll, describe, expect, test } from "bun:test";
import {
  JsonGuardError,
  SerializeTimeoutError,
  createJsonGuard,
  parsePublishSync,
  type ParsedPublish,
} from "../../src/protocol/json-guard.ts";

const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

/**
 * Legal JSON that takes seconds to parse: ~200 MB of small objects (10 M of them) inside `data`.
 * Depth is 4, so only its size hurts. Built once: the string itself costs ~200 MB. At 100 MB a
 * fast machine parsed it in 1.0–1.4 s, too close to the 1 s budget it must exceed.
 */
const PATHOLOGICAL =
  '{"channel":"public:flood","event":"flood","data":[' + '{"a":[1,2],"b":"x"},'.repeat(10_000_000) + "0]}";

describe("parsePublishSync", () => {
  test("a single publish gets dataJson instead of data", () => {
    expect(parsePublishSync('{"channel":"user:a","event":"x","data":{"n":[1,"two",null]},"critical":true}', 32)).toEqual({
      channel: "user:a",
      event: "x",
      critical: true,
      dataJson: '{"n":[1,"two",null]}',
    });
  });

  test("missing data becomes the JSON text null", () => {
    expect(parsePublishSync('{"channel":"user:a","event":"x"}')).toEqual({ channel: "user:a", event: "x", dataJson: "null" });
  });

  test("a batch turns data into dataJson in each item object and leaves the rest alone", () => {
    const text = '{"items":[{"channel":"user:a","event":"x","data":[1]},{"channel":"user:b","event":"y","idempotencyKey":"k"},7]}';
    expect(parsePublishSync(text, 32)).toEqual({
      items: [
        { channel: "user:a", event: "x", dataJson: "[1]" },
        { channel: "user:b", event: "y", idempotencyKey: "k", dataJson: "null" },
        7,
      ],
    });
  });

  test("a client-sent dataJson is overwritten, never trusted", () => {
    expect(parsePublishSync('{"event":"x","dataJson":"{\\"forged\\":1}","data":2}')).toEqual({ event: "x", dataJson: "2" });
  });

  test("invalid JSON is bad_json", () => {
    for (const text of ['{"channel":', "", "{'a':1}", '{"a":1} trailing']) {
      expect(() => parsePublishSync(text, 32)).toThrow(expect.objectContaining({ name: "JsonGuardError", code: "bad_json" }));
    }
  });

  test("a JSON value that is not an object is not_object", () => {
    for (const text of ["[]", "1", '"s"', "null"]) {
      expect(() => parsePublishSync(text, 32)).toThrow(expect.objectContaining({ code: "not_object" }));
    }
  });

  test("nesting up to maxDepth passes; one level more is too_deep", () => {
    expect(parsePublishSync(`{"data":${nested(31)}}`, 32).dataJson).toBe(nested(31));
    expect(() => parsePublishSync(`{"data":${nested(32)}}`, 32)).toThrow(
      expect.objectContaining({ name: "JsonGuardError", code: "too_deep" }),
    );
  });

  test("brackets and escaped quotes inside strings do not count as nesting", () => {
    const text = JSON.stringify({ data: { s: "[[[[[{{{{{", t: 'he said \\"[[[[\\" \\\\', u: "\\" } });
    expect(parsePublishSync(text, 3).dataJson).toBe(JSON.stringify({ s: "[[[[[{{{{{", t: 'he said \\"[[[[\\" \\\\', u: "\\" }));
  });

  test("a depth bomb of a million levels is refused before parsing", () => {
    const started = performance.now();
    expect(() => parsePublishSync(nested(1_000_000), 32)).toThrow(expect.objectContaining({ code: "too_deep" }));
    expect(performance.now() - started).toBeLessThan(100);
  });

  test("misuse throws TypeError or RangeError", () => {
    expect(() => parsePublishSync(42 as unknown as string, 32)).toThrow(TypeError);
    expect(() => parsePublishSync("{}", 0)).toThrow(RangeError);
    expect(() => parsePublishSync("{}", 2.5)).toThrow(RangeError);
  });
});

describe("createJsonGuard", () => {
  const guard = createJsonGuard({ timeoutMs: 1_000, maxDepth: 32 });
  afterAll(() => guard.close());

  test("gives the same output as the synchronous fast path", async () => {
    const bodies = [
      '{"channel":"user:a","event":"x","data":{"n":1},"coalesce":"k"}',
      '{"items":[{"channel":"user:a","event":"x","data":"s"},{"channel":"user:b","event":"y"}]}',
      '{"channel":"user:a","event":"x","data":"\\u2028 é 😀"}',
    ];
    for (const text of bodies) expect(await guard.parsePublish(text)).toEqual(parsePublishSync(text, 32));
  });

  test("refusals come back as JsonGuardError with their code", async () => {
    await expect(guard.parsePublish("{nope")).rejects.toMatchObject({ name: "JsonGuardError", code: "bad_json" });
    await expect(guard.parsePublish(`{"data":${nested(40)}}`)).rejects.toMatchObject({ code: "too_deep" });
    const error = await guard.parsePublish("[1]").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JsonGuardError);
    expect(error).toMatchObject({ code: "not_object" });
  });

  test("concurrent calls are matched to their own answers", async () => {
    const texts = Array.from({ length: 20 }, (_, i) => `{"event":"e${i}","data":${i}}`);
    const results = await Promise.all(texts.map((text) => guard.parsePublish(text)));
    expect(results.map((r) => [r.event, r.dataJson])).toEqual(texts.map((_, i) => [`e${i}`, String(i)]));
  });

  test("the pathological payload really takes over a second in the worker", async () => {
    using patient = createJsonGuard({ timeoutMs: 60_000 });
    await patient.parsePublish("{}"); // worker started, so only the parse is timed
    const started = performance.now();
    const parsed: ParsedPublish = await patient.parsePublish(PATHOLOGICAL);
    const elapsed = performance.now() - started;
    console.log(`pathological payload: ${(PATHOLOGICAL.length / 1e6).toFixed(0)} MB parsed in the worker in ${elapsed.toFixed(0)} ms`);
    expect(elapsed).toBeGreaterThan(1_000);
    expect(parsed.dataJson?.length).toBe(PATHOLOGICAL.length - '{"channel":"public:flood","event":"flood","data":}'.length);
  }, 30_000);

  test("a pathological payload times out within ~1 s while the event loop keeps serving; the next call works", async () => {
    using server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("alive") });
    await guard.parsePublish("{}"); // the worker is up before timing starts
    const before = guard.stats();

    const ticks: number[] = [];
    const interval = setInterval(() => ticks.push(performance.now()), 10);
    const started = performance.now();
    const outcome = guard.parsePublish(PATHOLOGICAL).then(
      () => "parsed",
      (error: unknown) => error,
    );
    const served = await fetch(server.url).then((r) => r.text());
    const servedAt = performance.now() - started;
    const error = await outcome;
    const rejectedAt = performance.now() - started;
    clearInterval(interval);

    expect(served).toBe("alive");
    expect(servedAt).toBeLessThan(500);
    expect(error).toBeInstanceOf(SerializeTimeoutError);
    expect(error).toMatchObject({ name: "SerializeTimeoutError", timeoutMs: 1_000 });
    expect(rejectedAt).toBeGreaterThanOrEqual(990);
    expect(rejectedAt).toBeLessThan(1_300);
    // The loop ticked all along (ideally ~100 ticks of 10 ms; a loaded machine delays timers, so the
    // count is not asserted): no stall beyond the hand-off copy, and ticks through the whole wait.
    const gaps = [ticks[0]! - started, ...ticks.slice(1).map((t, i) => t - ticks[i]!), rejectedAt + started - ticks.at(-1)!];
    console.log(`timed out after ${rejectedAt.toFixed(0)} ms; fetch answered after ${servedAt.toFixed(0)} ms; ${ticks.length} ticks, longest gap ${Math.max(...gaps).toFixed(0)} ms`);
    // Parsing this payload takes over a second (the test above), so a loop that never stalled for
    // half the budget proves the parse ran off it; a tighter bound measures the machine's load.
    expect(Math.max(...gaps)).toBeLessThan(500);
    expect(guard.stats()).toEqual({ calls: before.calls + 1, timeouts: before.timeouts + 1 });

    // A fresh worker answers the next call.
    expect(await guard.parsePublish('{"event":"after","data":[1]}')).toEqual({ event: "after", dataJson: "[1]" });
    expect(guard.stats()).toEqual({ calls: before.calls + 2, timeouts: before.timeouts + 1 });
  }, 30_000);

  test("a request queued behind a stuck one is re-sent to the fresh worker", async () => {
    using small = createJsonGuard({ timeoutMs: 300 });
    await small.parsePublish("{}");
    const stuck = small.parsePublish(PATHOLOGICAL).catch((e: unknown) => e);
    // Sent 100 ms later, so its own timer still has time left when the stuck one is killed.
    await Bun.sleep(100);
    const queued = small.parsePublish('{"event":"queued","data":true}');
    expect(await stuck).toBeInstanceOf(SerializeTimeoutError);
    expect(await queued).toEqual({ event: "queued", dataJson: "true" });
    expect(small.stats()).toEqual({ calls: 3, timeouts: 1 });
  }, 30_000);

  test("close rejects pending calls and refuses new ones with TypeError", async () => {
    const closing = createJsonGuard();
    const pending = closing.parsePublish(PATHOLOGICAL);
    closing.close();
    closing.close();
    await expect(pending).rejects.toThrow(TypeError);
    await expect(closing.parsePublish("{}")).rejects.toThrow(TypeError);
  });

  test("misuse throws RangeError or TypeError", async () => {
    expect(() => createJsonGuard({ timeoutMs: 0 })).toThrow(RangeError);
    expect(() => createJsonGuard({ timeoutMs: Infinity })).toThrow(RangeError);
    expect(() => createJsonGuard({ maxDepth: 0 })).toThrow(RangeError);
    await expect(guard.parsePublish(undefined as unknown as string)).rejects.toThrow(TypeError);
  });
});
