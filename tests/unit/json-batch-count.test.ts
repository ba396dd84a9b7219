/**
 * `batchItemsExceed`: the scan that refuses an oversized batch before JSON.parse builds it. Checked
 * against JSON.parse's own count over hand-picked and seeded random bodies, and through
 * `parsePublishSync` at the size where the scan runs.
 */
import { describe, expect, test } from "bun:test";
import { batchItemsExceed } from "../../src/protocol/json-depth.ts";
import { JsonGuardError, parsePublishSync } from "../../src/protocol/json-guard.ts";

describe("batchItemsExceed", () => {
  test("counts the elements of the top-level items array, not what nests inside them", () => {
    expect(batchItemsExceed('{"items":[{},{},{}]}', 2)).toBe(true);
    expect(batchItemsExceed('{"items":[{},{},{}]}', 3)).toBe(false);
    expect(batchItemsExceed('{"items":[{"a":[1,2,3,4]},{"b":{"c":1,"d":2}}]}', 2)).toBe(false);
    expect(batchItemsExceed('{"items":[]}', 0)).toBe(false);
    expect(batchItemsExceed('{"items":[1]}', 0)).toBe(true);
    expect(batchItemsExceed('{"items":["x"]}', 0)).toBe(true);
    expect(batchItemsExceed('{ "items" : [ 1 , 2 , 3 ] }', 2)).toBe(true);
    expect(batchItemsExceed('{\n  "items": [\n    1,\n    2\n  ]\n}', 1)).toBe(true);
  });

  test("commas, brackets and escaped quotes inside strings are not structure", () => {
    expect(batchItemsExceed('{"items":["a,b,c","[,],{,}"]}', 2)).toBe(false);
    expect(batchItemsExceed('{"items":["say \\"hi,\\" twice",","]}', 2)).toBe(false);
    expect(batchItemsExceed('{"items":["ends in a backslash \\\\",",",","]}', 2)).toBe(true);
  });

  test("only an items key at the top level counts: not a value, not a nested key, not another array", () => {
    expect(batchItemsExceed('{"channel":"items","data":[1,2,3]}', 1)).toBe(false);
    expect(batchItemsExceed('{"data":{"items":[1,2,3]}}', 1)).toBe(false);
    expect(batchItemsExceed('{"data":[1,2,3],"items":[1]}', 1)).toBe(false);
    expect(batchItemsExceed('{"items":{"a":[1,2,3]}}', 1)).toBe(false);
    expect(batchItemsExceed('{"items":5,"data":[1,2,3]}', 1)).toBe(false);
    expect(batchItemsExceed('[{"items":[1,2,3]}]', 1)).toBe(false);
  });

  test("agrees with JSON.parse's count over 2,000 seeded random bodies", () => {
    let seed = 19;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)]!;
    const strings = ["", "items", "a,b", "[", "]", "{,}", 'q"uote', "back\\", "\\\"", "ü,€", "\u2028"];
    const value = (depth: number): unknown => {
      const r = random();
      if (depth > 3 || r < 0.3) return pick([0, 1.5, -2, true, false, null, ...strings]);
      if (r < 0.65) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(random() * 4) }, () => [pick(strings), value(depth + 1)]));
    };
    for (let round = 0; round < 2000; round++) {
      const items = Array.from({ length: Math.floor(random() * 12) }, () => value(2));
      const body: Record<string, unknown> = {};
      if (random() < 0.5) body[pick(["channel", "data", "x,y", "it]ems"])] = value(1);
      body.items = items;
      if (random() < 0.5) body[pick(["event", "data", "z"])] = value(1);
      const text = JSON.stringify(body, null, random() < 0.3 ? 2 : undefined);
      const max = Math.floor(random() * 12);
      expect({ text, max, exceeds: batchItemsExceed(text, max) }).toEqual({ text, max, exceeds: items.length > max });
    }
  });
});

describe("parsePublishSync counts large batches before parsing", () => {
  test("a million empty items over the scan size is refused too_many_items, as the count after parsing refuses it", () => {
    const text = `{"items":[${"{},".repeat(999_999)}{}]}`;
    let error: unknown;
    try {
      parsePublishSync(text, 34, 100);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(JsonGuardError);
    expect((error as JsonGuardError).code).toBe("too_many_items");
    expect((error as JsonGuardError).message).toBe("a batch holds at most 100 items");
  });

  test("a large batch within the limit still parses, each item's data serialized", () => {
    const big = "x".repeat(1000);
    const text = JSON.stringify({ items: Array.from({ length: 100 }, (_, i) => ({ channel: "user:a", event: "e", data: { i, big } })) });
    expect(text.length).toBeGreaterThan(64 * 1024);
    const parsed = parsePublishSync(text, 34, 100) as { items: { dataJson: string }[] };
    expect(parsed.items).toHaveLength(100);
    expect(JSON.parse(parsed.items[99]!.dataJson)).toEqual({ i: 99, big });
  });

  test("a single publish over the scan size with a long data array is not a batch", () => {
    const text = JSON.stringify({ channel: "user:a", event: "e", data: Array.from({ length: 30_000 }, (_, i) => i) });
    expect(text.length).toBeGreaterThan(64 * 1024);
    expect(parsePublishSync(text, 34, 100)).toMatchObject({ channel: "user:a", event: "e" });
  });
});
