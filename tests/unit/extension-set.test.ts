/** ExtensionSet: hooks that cannot break their caller, first answers, gathered parts. */
import { describe, expect, test } from "bun:test";
import type { ConnData } from "../../src/connection/conn-data.ts";
import { CircuitBreaker } from "../../src/resilience/index.ts";
import { ExtensionSet } from "../../src/server/extension.ts";
import { createLogger } from "../../src/telemetry/index.ts";

function set() {
  const logs: string[] = [];
  return { logs, extensions: new ExtensionSet(createLogger({ level: "debug", sink: (line) => logs.push(line) })) };
}

describe("ExtensionSet", () => {
  test("a throwing hook is logged and the other extensions still hear it", () => {
    const { logs, extensions } = set();
    const seen: string[] = [];
    extensions.add([
      { published: () => void seen.push("a"), connectionOpened: () => { throw new Error("tier cache broke"); } },
      { published: () => { throw new Error("tracker broke"); } },
      { published: () => void seen.push("c"), connectionOpened: () => void seen.push("opened") },
    ]);
    extensions.published([], []);
    extensions.connectionOpened({} as ConnData);
    expect(seen).toEqual(["a", "c", "opened"]);
    expect(logs.map((l) => JSON.parse(l))).toMatchObject([
      { level: "error", msg: "extension hook failed", hook: "published", error: "tracker broke" },
      { level: "error", msg: "extension hook failed", hook: "connectionOpened", error: "tier cache broke" },
    ]);
  });

  test("tierOf, jobOwner and rpc take the first extension that answers", async () => {
    const { extensions } = set();
    const first = async () => "first";
    extensions.add([{ tierOf: () => null, jobOwner: async () => null }, { tierOf: async () => "pro" as const, jobOwner: (id) => (id === "j1" ? "alice" : null), rpc: first }, { tierOf: () => "enterprise", rpc: async () => "second" }]);
    expect(await extensions.tierOf("u")).toBe("pro");
    expect(await extensions.jobOwner("j1")).toBe("alice");
    expect(await extensions.jobOwner("j2")).toBeNull();
    expect(extensions.rpc).toBe(first);
  });

  test("with no extension, lookups answer null and rpc is absent", async () => {
    const { extensions } = set();
    expect({ tier: await extensions.tierOf("u"), owner: await extensions.jobOwner("j"), rpc: extensions.rpc, inFlight: extensions.jobsInFlight(), stats: extensions.stats() }).toEqual({
      tier: null,
      owner: null,
      rpc: undefined,
      inFlight: 0,
      stats: {},
    });
  });

  test("routes, checks, breakers, stats and jobs in flight are gathered from every extension", () => {
    const { extensions } = set();
    const breaker = new CircuitBreaker({ name: "agent" });
    const check = { name: "agent", timeoutMs: 100, required: false, run: async () => {} };
    const handler = () => new Response("ok");
    extensions.add([
      { routes: { "/a": { GET: handler } }, checks: [check], jobsInFlight: () => 2, stats: () => ({ jobs: 2 }) },
      { routes: { "/b": { POST: handler } }, breakers: [breaker], jobsInFlight: () => 3, stats: () => ({ agent: true }), staticRoutes: { "/s": "page" } },
    ]);
    expect(extensions.routes()).toEqual([["/a", { GET: handler }], ["/b", { POST: handler }]]);
    expect({ checks: extensions.checks(), breakers: extensions.breakers(), inFlight: extensions.jobsInFlight(), stats: extensions.stats(), statics: extensions.staticRoutes() }).toEqual({
      checks: [check],
      breakers: [breaker],
      inFlight: 5,
      stats: { jobs: 2, agent: true },
      statics: { "/s": "page" },
    });
  });
});
