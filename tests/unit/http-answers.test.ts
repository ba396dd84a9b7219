/** The HTTP edges of http.ts on their own: JSON answers and the body reader. */
import { describe, expect, test } from "bun:test";
import { HttpError, json, rawJson, readText } from "../../src/server/http.ts";

const JSON_FIELDS = {
  "cache-control": "no-store",
  "content-type": "application/json; charset=utf-8",
  "x-content-type-options": "nosniff",
};

describe("json and rawJson", () => {
  test("each answer has the JSON headers in its own copy: changing one leaves the next untouched", () => {
    const first = json({ a: 1 });
    first.headers.set("access-control-allow-origin", "*");
    first.headers.append("vary", "Origin");
    for (const next of [json({ a: 2 }), rawJson("{}"), json({ a: 3 }, 201)]) expect(next.headers.toJSON()).toEqual(JSON_FIELDS);
  });

  test("extra headers join the JSON ones", () => {
    expect(json({}, 503, { "retry-after": "2" }).headers.toJSON()).toEqual({ ...JSON_FIELDS, "retry-after": "2" });
  });
});

/** A POST whose body is `bytes`, with its Content-Length declared or streamed in chunks without one. */
function post(bytes: Uint8Array, framing: "declared" | "chunked"): Request {
  if (framing === "declared") return new Request("http://x/", { method: "POST", body: bytes as Uint8Array<ArrayBuffer>, headers: { "content-length": String(bytes.length) } });
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 3) controller.enqueue(bytes.subarray(i, i + 3));
      controller.close();
    },
  });
  return new Request("http://x/", { method: "POST", body: stream });
}

describe("readText", () => {
  const bodies = [
    new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), // a BOM, dropped
    new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), // bytes that are not UTF-8, replaced
    new Uint8Array([0xc3]), // a sequence cut short
    new TextEncoder().encode('{"a":"é😀"}'),
    new Uint8Array(0),
  ];

  test("decodes as TextDecoder does, whether the length is declared or the body is chunked", async () => {
    for (const bytes of bodies) {
      const expected = new TextDecoder().decode(bytes);
      expect({ bytes: [...bytes], text: await readText(post(bytes, "declared"), 64) }).toEqual({ bytes: [...bytes], text: expected });
      expect({ bytes: [...bytes], text: await readText(post(bytes, "chunked"), 64) }).toEqual({ bytes: [...bytes], text: expected });
    }
  });

  test("a body over the limit is HttpError 413, declared or streamed; at the limit it is read", async () => {
    const at = new Uint8Array(10).fill(0x31);
    const over = new Uint8Array(11).fill(0x31);
    for (const framing of ["declared", "chunked"] as const) {
      expect(await readText(post(at, framing), 10)).toBe("1".repeat(10));
      const refused = await readText(post(over, framing), 10).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(HttpError);
      expect((refused as HttpError).status).toBe(413);
    }
  });
});
