/**
 * The publish body's fast path (`fastParsePublishBody`) against the schema it stands in for: over
 * every body of the table, the same verdict and the same output (so `toItem`, which builds the item
 * from that output alone, builds the same item), and refusals with zod's own issues.
 */
import { describe, expect, test } from "bun:test";
import { toItem, validationError } from "../../src/server/http.ts";
import { parsePublishSync } from "../../src/protocol/json-guard.ts";
import { fastParsePublishBody, PublishBodySchema } from "../../src/protocol/publish.ts";

const MISSING = Symbol("missing");
const x = (n: number) => "x".repeat(n);
/** Non-string, non-boolean JSON values and what JSON cannot carry but an object can. */
const WRONG_TYPES = [0, 1, -1, 1.5, null, [], ["user:a"], {}, { channel: "user:a" }, undefined];

/**
 * Values each field takes in the table: the valid ones first (boundaries included), then invalid
 * ones (the other side of each boundary, wrong types) and missing.
 */
const FIELDS: Record<string, { valid: unknown[]; invalid: unknown[] }> = {
  channel: {
    valid: ["user:a", "job:42", `a:${x(128)}`, `${"k".repeat(32)}:n`, "job:a.b", "public:a@b=c"],
    invalid: [`a:${x(129)}`, `${"k".repeat(33)}:n`, "job:a..b", "USER:a", "user:", ":a", "user", "", "user:é", "user:a b", true, ...WRONG_TYPES, MISSING],
  },
  event: { valid: ["x", "agent_started", "a.b:c-d", x(64)], invalid: [x(65), "", "a b", "é", true, ...WRONG_TYPES, MISSING] },
  dataJson: { valid: ['{"n":1}', "null", "", "[1,[2,[3]]]"], invalid: [true, ...WRONG_TYPES, MISSING] },
  critical: { valid: [true, false, undefined, MISSING], invalid: ["true", "false", 0, 1, null, [], {}] },
  coalesce: {
    valid: ["k", x(128), "😀".repeat(64), `${"😀".repeat(64)}x`, "😀".repeat(128), "\uD800", " ", MISSING],
    invalid: [x(129), "", "😀".repeat(129), `\uD800${x(128)}`, `${"😀".repeat(128)}x`, true, ...WRONG_TYPES],
  },
  idempotencyKey: {
    valid: ["k", x(128), "😀".repeat(64), `${"😀".repeat(64)}x`, "key with spaces", `\uDC00${"😀".repeat(127)}`, MISSING],
    invalid: [x(129), "", `\uDC00${"😀".repeat(128)}`, `${"😀".repeat(128)}\uD800`, false, ...WRONG_TYPES],
  },
  extra: { valid: [MISSING, 1, "x", null, { nested: { deeper: [1, 2, { deepest: true }] } }], invalid: [] },
};
const VALID = { channel: "user:a", event: "x", dataJson: "null" } as const;

function body(values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(values)) if (value !== MISSING) out[field] = value;
  return out;
}

/** mulberry32: a fixed sequence, so a failing body can be found again. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every value of one field at a time in a valid body, then seeded random bodies, mostly of valid values. */
function table(): unknown[] {
  const bodies: unknown[] = [];
  for (const [field, { valid, invalid }] of Object.entries(FIELDS)) for (const value of [...valid, ...invalid]) bodies.push(body({ ...VALID, [field]: value }));
  const next = random(19);
  const pick = (values: unknown[]) => values[Math.floor(next() * values.length)];
  for (let i = 0; i < 3000; i++) {
    const fields = Object.entries(FIELDS).map(([field, { valid, invalid }]) => [field, next() < 0.9 || invalid.length === 0 ? pick(valid) : pick(invalid)]);
    bodies.push(body(Object.fromEntries(fields)));
  }
  // Not objects at all (batch items may be anything), and objects JSON makes oddly.
  bodies.push(null, undefined, "user:a", 1, true, [], [VALID], new Date(0));
  bodies.push(JSON.parse('{"channel":"user:a","event":"x","dataJson":"1","__proto__":{"critical":"no"}}'));
  bodies.push(JSON.parse('{"channel":"user:a","event":"x","dataJson":"1","constructor":1,"toString":2}'));
  bodies.push(Object.assign(Object.create({ channel: "user:a", critical: true }), { event: "x", dataJson: "1" }));
  return bodies;
}

/** The same bodies as the server sees them: JSON text through the body reader (`data` serialized into `dataJson`). */
function fromJson(): unknown[] {
  const texts = [
    '{"channel":"user:a","event":"x","data":{"a":[1,{"b":{"c":[null,true,"é😀"]}}]}}',
    '{"channel":"user:a","event":"x"}',
    '{"channel":"user:a","event":"x","data":null,"critical":true,"coalesce":"k","idempotencyKey":"i"}',
    '{"channel":"user:a","event":"x","dataJson":"{\\"forged\\":1}"}',
    '{"channel":"user:a","event":"x","items":[1,2]}',
    '{"channel":"job:1","event":"x","critical":"yes"}',
    '{"event":"x","data":1}',
    '{"channel":"user:a","event":"x","data":1,"extra":{"deep":[[[[1]]]]}}',
  ];
  return texts.map((text) => parsePublishSync(text, 34));
}

describe("fastParsePublishBody", () => {
  const bodies = [...table(), ...fromJson()];

  test("the table is large and holds both verdicts", () => {
    const verdicts = bodies.map((b) => PublishBodySchema.safeParse(b).success);
    expect(bodies.length).toBeGreaterThan(3000);
    expect(verdicts.filter(Boolean).length).toBeGreaterThan(1000);
    expect(verdicts.filter((v) => !v).length).toBeGreaterThan(1000);
  });

  test("accepts exactly what the schema accepts, with the schema's output", () => {
    const differences = bodies.flatMap((b, index): Array<{ index: number; body: unknown; schema: unknown; fast: unknown }> => {
      const fast = fastParsePublishBody(b);
      const schema = PublishBodySchema.safeParse(b);
      if (schema.success !== (fast !== undefined)) return [{ index, body: b, schema: schema.success, fast: fast !== undefined }];
      if (schema.success) {
        try {
          expect(fast).toStrictEqual(schema.data);
        } catch {
          return [{ index, body: b, schema: schema.data, fast }];
        }
      }
      return [];
    });
    expect(differences).toEqual([]);
  });

  test("toItem refuses every body the schema refuses, with the schema's issues", () => {
    const refused = bodies.flatMap((b) => {
      const schema = PublishBodySchema.safeParse(b);
      return schema.success ? [] : [{ b, message: validationError(schema.error.issues, "items.0").message }];
    });
    for (const { b, message } of refused) expect(() => toItem(new Set(), b, null, "items.0")).toThrow(message);
  });
});
