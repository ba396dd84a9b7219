/** Tiered signals (PROTOCOL.md §2 `/v1/signals`) and user tiers, through the real server and real clients. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connectWelcomed, type TestClient } from "./helpers/client.ts";
import { API_KEY, startServer, type TestServer } from "./helpers/server.ts";
import { createExtensions, signalChannelsFor, type TierProvider } from "../src/domain/index.ts";
import { TIERS, type Tier } from "../src/protocol/codes.ts";

const postSignal = (s: TestServer, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${s.http}/v1/signals`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}`, ...headers }, body: JSON.stringify(body) });
const signalsOf = (c: TestClient) => c.frames.filter((f) => f.type === "event" && f.channel.startsWith("signals:"));
const settle = (c: TestClient) => c.request({ type: "ping" });

/** Connects `user` and subscribes to every signal channel its tier may join. */
async function signalClient(s: TestServer, user: string, tier: Tier, claim = true): Promise<TestClient> {
  const c = await connectWelcomed(`${s.ws}?token=${await s.token(user, claim ? { tier } : {})}`);
  for (const channel of signalChannelsFor(tier)) expect(await c.request({ type: "subscribe", channel })).toMatchObject({ type: "subscribed", channel });
  return c;
}

describe("tiered signals", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server.stop());

  test("starter, pro and enterprise users each receive exactly the signals of their tier and below", async () => {
    const clients = { starter: await signalClient(server, "sig-s", "starter"), pro: await signalClient(server, "sig-p", "pro"), enterprise: await signalClient(server, "sig-e", "enterprise") };
    for (const tier of TIERS) {
      const res = await postSignal(server, { tier, event: "alert", data: { for: tier } });
      expect(res.status).toBe(201);
      expect(await res.json()).toMatchObject({ channel: `signals:${tier}`, offset: expect.any(Number), epoch: expect.any(String) });
    }
    const expected: Record<Tier, Tier[]> = { starter: ["starter"], pro: ["starter", "pro"], enterprise: ["starter", "pro", "enterprise"] };
    for (const tier of TIERS) {
      const c = clients[tier];
      await c.collect((f) => f.type === "event" && f.event === "alert", expected[tier].length);
      await settle(c);
      expect(signalsOf(c).map((e) => e.data.for).sort()).toEqual([...expected[tier]].sort());
      expect(signalsOf(c).every((e) => e.critical === true)).toBe(true);
      c.close();
    }
  });

  test("a user cannot join the signals of a higher tier", async () => {
    const c = await connectWelcomed(`${server.ws}?token=${await server.token("sig-low", { tier: "starter" })}`);
    expect(await c.request({ type: "subscribe", channel: "signals:pro" })).toMatchObject({ type: "error", code: "forbidden" });
    c.close();
  });

  test("a signal stored while the user is offline arrives on resume with since", async () => {
    const first = await signalClient(server, "sig-off", "pro");
    const before = await postSignal(server, { tier: "pro", data: { n: 1 } });
    const seen = await first.next((f) => f.type === "event" && f.channel === "signals:pro" && f.data?.n === 1);
    expect(seen.event).toBe("signal");
    const { epoch } = first.frames.find((f) => f.type === "subscribed" && f.channel === "signals:pro")!;
    first.close();
    await first.closed;
    const offline = await (await postSignal(server, { tier: "pro", event: "while_away", data: { n: 2 } })).json();
    const again = await connectWelcomed(`${server.ws}?token=${await server.token("sig-off", { tier: "pro" })}`);
    expect(await again.request({ type: "subscribe", channel: "signals:pro", since: { offset: seen.offset, epoch } })).toMatchObject({ recovered: true, epoch });
    const missed = await again.next((f) => f.type === "event" && f.event === "while_away");
    expect(missed).toMatchObject({ offset: offline.offset, data: { n: 2 }, critical: true });
    expect(before.status).toBe(201);
    again.close();
  });

  test("bad bodies answer 400, a missing key 401", async () => {
    for (const body of [{ data: 1 }, { tier: "gold", data: 1 }, { tier: "pro", event: "has space" }]) {
      expect({ body, status: (await postSignal(server, body)).status }).toEqual({ body, status: 400 });
    }
    expect((await fetch(`${server.http}/v1/signals`, { method: "POST", body: JSON.stringify({ tier: "pro" }) })).status).toBe(401);
  });

  test("an Idempotency-Key answers the first offset on a retry", async () => {
    const first = await (await postSignal(server, { tier: "starter", data: 1 }, { "idempotency-key": "sig-retry-1" })).json();
    const retry = await (await postSignal(server, { tier: "starter", data: 1 }, { "idempotency-key": "sig-retry-1" })).json();
    expect(retry).toEqual(first);
  });
});

describe("user tiers from a provider", () => {
  const calls: string[][] = [];
  const provider: TierProvider = async (users) => {
    calls.push([...users]);
    const known: Record<string, Tier> = { "tp-pro": "pro", "tp-ent": "enterprise" };
    return Object.fromEntries(users.filter((u) => known[u]).map((u) => [u, known[u]!]));
  };
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ extensions: (ctx) => createExtensions(ctx, { tierProvider: provider }) });
  });
  afterAll(() => server.stop());

  test("tokens without a tier claim get the provider's tier; the provider is asked once per user, not per signal", async () => {
    const [pro, ent, none] = await Promise.all([signalClient(server, "tp-pro", "pro", false), signalClient(server, "tp-ent", "enterprise", false), signalClient(server, "tp-none", "starter", false)]);
    expect(await none!.request({ type: "subscribe", channel: "signals:pro" })).toMatchObject({ code: "forbidden" });
    expect(await pro!.request({ type: "subscribe", channel: "signals:enterprise" })).toMatchObject({ code: "forbidden" });
    // A second connection of a cached user asks nothing.
    const proAgain = await signalClient(server, "tp-pro", "pro", false);
    for (let i = 0; i < 10; i++) expect((await postSignal(server, { tier: TIERS[i % 3], data: i })).status).toBe(201);
    await ent!.collect((f) => f.type === "event" && f.channel.startsWith("signals:"), 10);
    await pro!.collect((f) => f.type === "event" && f.channel.startsWith("signals:"), 7);
    await none!.collect((f) => f.type === "event" && f.channel.startsWith("signals:"), 4);
    const asked = calls.flat();
    expect(asked.sort()).toEqual(["tp-ent", "tp-none", "tp-pro"]);
    expect(calls.length).toBeLessThanOrEqual(3);
    const stats = await server.stats();
    expect(stats.byTier).toEqual({ starter: 1, pro: 2, enterprise: 1 });
    expect(stats.tiers).toMatchObject({ cached: 3, providerCalls: calls.length });
    for (const c of [pro, ent, none, proAgain]) c!.close();
  });

  test("a token's tier claim wins and never asks the provider", async () => {
    const before = calls.length;
    const c = await signalClient(server, "tp-claimed", "enterprise", true);
    expect(calls.length).toBe(before);
    c.close();
  });
});
