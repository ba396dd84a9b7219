import { describe, expect, test } from "bun:test";
import { TierCache, type TierProvider } from "../../src/domain/tier-cache.ts";
import type { Tier } from "../../src/protocol/codes.ts";

/** A provider that records each call and answers from a table the test may change. */
function recording(table: Record<string, Tier>) {
  const calls: string[][] = [];
  const provider: TierProvider = async (users) => {
    calls.push([...users]);
    return Object.fromEntries(users.filter((u) => Object.hasOwn(table, u)).map((u) => [u, table[u]!]));
  };
  return { calls, provider, table };
}

describe("TierCache", () => {
  test("users asked within one turn go into one provider call", async () => {
    const { calls, provider } = recording({ a: "pro", b: "enterprise" });
    const tiers = new TierCache({ provider });
    const answers = await Promise.all([tiers.tierOf("a"), tiers.tierOf("b"), tiers.tierOf("c"), tiers.tierOf("a")]);
    expect(answers).toEqual(["pro", "enterprise", null, "pro"]);
    expect(calls).toEqual([["a", "b", "c"]]);
  });

  test("a cached user is answered at once, without a call", async () => {
    const { calls, provider } = recording({ a: "pro" });
    const tiers = new TierCache({ provider });
    await tiers.tierOf("a");
    tiers.opened("a");
    expect(tiers.tierOf("a")).toBe("pro");
    expect(calls).toHaveLength(1);
  });

  test("the last connection's close drops the user; the next connect asks again", async () => {
    const { calls, provider } = recording({ a: "pro" });
    const tiers = new TierCache({ provider });
    await tiers.tierOf("a");
    tiers.opened("a");
    tiers.opened("a");
    tiers.closed("a");
    expect(tiers.size).toBe(1);
    tiers.closed("a");
    expect(tiers.size).toBe(0);
    await tiers.tierOf("a");
    expect(calls).toHaveLength(2);
  });

  test("refresh asks for every cached user in one call and reports changes", async () => {
    const { calls, provider, table } = recording({ a: "pro", b: "pro" });
    const changes: Array<[string, Tier | null]> = [];
    const tiers = new TierCache({ provider, onChange: (changed) => changes.push(...changed) });
    await Promise.all([tiers.tierOf("a"), tiers.tierOf("b")]);
    tiers.opened("a");
    tiers.opened("b");
    table.a = "enterprise";
    await tiers.refresh();
    expect(calls).toEqual([["a", "b"], ["a", "b"]]);
    expect(changes).toEqual([["a", "enterprise"]]);
    expect(tiers.tierOf("a")).toBe("enterprise");
  });

  test("a looked-up user that never connected is forgotten by the second refresh", async () => {
    const { provider } = recording({});
    const tiers = new TierCache({ provider });
    await tiers.tierOf("ghost");
    await tiers.refresh();
    expect(tiers.size).toBe(1);
    await tiers.refresh();
    expect(tiers.size).toBe(0);
  });

  test("a failing or hanging provider answers null and caches nothing; a failed refresh keeps tiers", async () => {
    const errors: unknown[] = [];
    let behaviour: "throw" | "hang" | "ok" = "throw";
    const provider: TierProvider = (users) =>
      behaviour === "throw" ? Promise.reject(new Error("down")) : behaviour === "hang" ? new Promise(() => {}) : Promise.resolve({ [users[0]!]: "pro" as Tier });
    const tiers = new TierCache({ provider, timeoutMs: 20, onError: (e) => errors.push(e) });
    expect(await tiers.tierOf("a")).toBeNull();
    behaviour = "hang";
    expect(await tiers.tierOf("a")).toBeNull();
    expect(tiers.size).toBe(0);
    behaviour = "ok";
    expect(await tiers.tierOf("a")).toBe("pro");
    tiers.opened("a");
    behaviour = "throw";
    await tiers.refresh();
    expect(tiers.tierOf("a")).toBe("pro");
    expect(errors).toHaveLength(3);
  });

  test("answers outside the tier list count as no tier", async () => {
    const tiers = new TierCache({ provider: async () => ({ a: "platinum" as Tier }) });
    expect(await tiers.tierOf("a")).toBeNull();
  });

  test("options are validated", () => {
    expect(() => new TierCache({ provider: undefined as never })).toThrow(TypeError);
    expect(() => new TierCache({ provider: async () => ({}), refreshMs: 0 })).toThrow(RangeError);
  });
});
