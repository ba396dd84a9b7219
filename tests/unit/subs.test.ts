/**
 * A connection's subscriptions (src/connection/subs.ts): the same answers with none, one (held
 * without a Map) and several, in the order of subscribing. Through the real server:
 * tests/core.test.ts and tests/delivery.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { newConnData, type ConnData } from "../../src/connection/conn-data.ts";
import { deleteSub, newSubscription, setSub, subCount, subOf, subsOf } from "../../src/connection/subs.ts";

function conn(): ConnData {
  return newConnData({ user: "u1", tier: "starter", channels: new Set(), exp: 0, tierFromToken: false }, "s1", null, 0, 10);
}

/** What a reader sees: the channels in iteration order, the count, and whether each is found. */
function view(data: ConnData, ...channels: string[]) {
  return {
    order: [...subsOf(data)].map((s) => s.channel),
    count: subCount(data),
    found: channels.map((c) => subOf(data, c)?.channel ?? null),
  };
}

describe("subscriptions of a connection", () => {
  test("none: nothing found, nothing to iterate, nothing to delete", () => {
    const data = conn();
    expect(view(data, "public:a")).toEqual({ order: [], count: 0, found: [null] });
    expect(deleteSub(data, "public:a")).toBe(false);
  });

  test("one is held as the subscription itself, without a Map", () => {
    const data = conn();
    const a = newSubscription("public:a");
    setSub(data, a);
    expect(view(data, "public:a", "public:b")).toEqual({ order: ["public:a"], count: 1, found: ["public:a", null] });
    expect(subOf(data, "public:a")).toBe(a);
    expect(data.subs).toBe(a);
  });

  test("two and three are kept in the order of subscribing", () => {
    const data = conn();
    for (const c of ["public:a", "public:b"]) setSub(data, newSubscription(c));
    expect(view(data, "public:a", "public:b")).toEqual({ order: ["public:a", "public:b"], count: 2, found: ["public:a", "public:b"] });
    setSub(data, newSubscription("public:c"));
    expect(view(data, "public:a", "public:c", "public:d")).toEqual({ order: ["public:a", "public:b", "public:c"], count: 3, found: ["public:a", "public:c", null] });
  });

  test("the first one unsubscribed while others exist leaves them, and back to one drops the Map", () => {
    const data = conn();
    for (const c of ["public:a", "public:b", "public:c"]) setSub(data, newSubscription(c));
    expect(deleteSub(data, "public:a")).toBe(true);
    expect(view(data, "public:a", "public:b")).toEqual({ order: ["public:b", "public:c"], count: 2, found: [null, "public:b"] });
    expect(deleteSub(data, "public:c")).toBe(true);
    expect(view(data, "public:b", "public:c")).toEqual({ order: ["public:b"], count: 1, found: ["public:b", null] });
    expect(data.subs).not.toBeInstanceOf(Map);
    expect(deleteSub(data, "public:b")).toBe(true);
    expect(view(data, "public:b")).toEqual({ order: [], count: 0, found: [null] });
  });

  test("deleting a channel not subscribed changes nothing", () => {
    const data = conn();
    setSub(data, newSubscription("public:a"));
    expect(deleteSub(data, "public:b")).toBe(false);
    setSub(data, newSubscription("public:b"));
    expect(deleteSub(data, "public:c")).toBe(false);
    expect(view(data)).toEqual({ order: ["public:a", "public:b"], count: 2, found: [] });
  });

  test("re-subscribing after an unsubscribe comes last; setting a channel again replaces it in place", () => {
    const data = conn();
    for (const c of ["public:a", "public:b"]) setSub(data, newSubscription(c));
    deleteSub(data, "public:a");
    setSub(data, newSubscription("public:a"));
    expect(view(data).order).toEqual(["public:b", "public:a"]);
    const again = newSubscription("public:b");
    setSub(data, again);
    expect({ order: view(data).order, same: subOf(data, "public:b") === again }).toEqual({ order: ["public:b", "public:a"], same: true });
    deleteSub(data, "public:a");
    const single = newSubscription("public:b");
    setSub(data, single);
    expect({ count: subCount(data), same: subOf(data, "public:b") === single }).toEqual({ count: 1, same: true });
  });

  test("every subscription has the same fields from the start", () => {
    expect(Object.keys(newSubscription("public:a"))).toEqual(["channel", "epoch", "from", "acked", "timedOut", "joinedAt", "ready"]);
  });
});
