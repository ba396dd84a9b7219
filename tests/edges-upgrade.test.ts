/**
 * The upgrade's edges of PROTOCOL §2–§3 v1.1 against the real server with real clients: the token
 * as a subprotocol (`courier.v1` selected), `GET /v1/ws/check` answering what an upgrade would
 * get, the per-IP upgrade limit before the token is verified, `X-Forwarded-For` believed only
 * from trusted proxies, sampled refusal log lines with the client IP and never a token, and the
 * SDK reporting refusals it learnt from the check.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { CourierClient, type StatusChange } from "../packages/client/src/index.ts";
import { connectWelcomed, upgradeStatus } from "./helpers/client.ts";
import { startServer, type TestServer } from "./helpers/server.ts";

const servers: TestServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop();
});
async function start(config: Parameters<typeof startServer>[0] = {}): Promise<TestServer> {
  const s = await startServer(config);
  servers.push(s);
  return s;
}

/** Opens a WebSocket offering `protocols`; resolves with the welcome and the selected protocol, or the close. */
function dial(url: string, protocols: string[]): Promise<{ protocol: string; welcome: Record<string, unknown> | undefined; ws: WebSocket; code?: number }> {
  const ws = new WebSocket(url, protocols);
  return new Promise((resolve) => {
    ws.onmessage = (m) => resolve({ protocol: ws.protocol, welcome: JSON.parse(String(m.data)), ws });
    ws.onclose = (e) => resolve({ protocol: ws.protocol, welcome: undefined, ws, code: e.code });
  });
}

const check = (s: TestServer, token: string | undefined, headers: Record<string, string> = {}) =>
  fetch(`${s.http}/v1/ws/check`, { headers: token === undefined ? headers : { authorization: `Bearer ${token}`, ...headers } });

describe("the token as a subprotocol", () => {
  test("courier.v1 + courier.token.<jwt> connects and the 101 selects courier.v1, whatever the order offered", async () => {
    const s = await start();
    const token = await s.token("proto-user");
    for (const protocols of [["courier.v1", `courier.token.${token}`], [`courier.token.${token}`, "courier.v1"]]) {
      const { protocol, welcome, ws } = await dial(s.ws, protocols);
      expect(protocol).toBe("courier.v1");
      expect(welcome).toMatchObject({ type: "welcome", user: "proto-user" });
      ws.close();
    }
  });

  test("a bad token offered that way is 401 before the upgrade; offering it without courier.v1 is 400", async () => {
    const s = await start();
    const bad = await upgradeStatus(s.ws, { "sec-websocket-protocol": "courier.v1, courier.token.eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl" });
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ error: "unauthorized", reason: "unauthorized" });
    const alone = await upgradeStatus(s.ws, { "sec-websocket-protocol": `courier.token.${await s.token("x")}` });
    expect(alone.status).toBe(400);
    expect((await alone.json()).message).toContain("courier.v1");
    expect(s.logs.join("\n")).not.toContain("eyJ");
  });

  test("the SDK connects through it by default, and the URL it dials holds no token", async () => {
    const s = await start();
    const token = await s.token("sdk-proto");
    const urls: string[] = [];
    const Recording = class extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        urls.push(url);
        super(url, protocols);
      }
    };
    const client = new CourierClient({ url: s.ws, token, WebSocket: Recording });
    const live = Promise.withResolvers<void>();
    client.on("status", (c) => c.status === "live" && live.resolve());
    client.connect();
    await live.promise;
    expect(urls).toHaveLength(1);
    expect(urls[0]).not.toContain(token);
    client.close();
  });
});

describe("GET /v1/ws/check", () => {
  test("200 {user, tier} for a token that could connect, from the header or ?token=; the check holds no slot", async () => {
    const s = await start();
    const token = await s.token("checker", { tier: "pro" });
    const byHeader = await check(s, token);
    expect(byHeader.status).toBe(200);
    expect(await byHeader.json()).toEqual({ user: "checker", tier: "pro" });
    const byQuery = await fetch(`${s.http}/v1/ws/check?token=${token}`);
    expect(await byQuery.json()).toEqual({ user: "checker", tier: "pro" });
    const clients = [];
    for (let i = 0; i < s.config.limits.connectionsPerUser; i++) clients.push(await connectWelcomed(`${s.ws}?token=${token}`));
    for (const c of clients) c.close();
  });

  test("answers exactly the refusal an upgrade gets now: 401 expired and bad, 429 at max connections, 503 node full, 403 origin", async () => {
    const s = await start({ config: { limits: { connectionsPerNode: 4 }, server: { allowedOrigins: ["https://app.example.com"] } } });
    const same = async (token: string | undefined, status: number, reason: string, headers: Record<string, string> = {}) => {
      const viaCheck = await check(s, token, headers);
      const viaUpgrade = await upgradeStatus(token === undefined ? s.ws : `${s.ws}?token=${token}`, headers);
      expect([viaCheck.status, viaUpgrade.status]).toEqual([status, status]);
      const [a, b] = [await viaCheck.json(), await viaUpgrade.json()];
      expect(a).toEqual(b);
      expect(a.reason).toBe(reason);
      expect(viaCheck.headers.get("retry-after")).toBe(viaUpgrade.headers.get("retry-after"));
      return viaCheck;
    };
    await same(await s.token("old", { ttlS: -60 }), 401, "token_expired");
    await same("not-a-jwt", 401, "unauthorized");
    await same(undefined, 401, "unauthorized");
    await same(await s.token("o"), 403, "forbidden_origin", { origin: "https://evil.example" });

    const full = await s.token("full");
    const open = [];
    for (let i = 0; i < s.config.limits.connectionsPerUser; i++) open.push(await connectWelcomed(`${s.ws}?token=${full}`));
    const tooMany = await same(full, 429, "too_many_connections");
    expect(tooMany.headers.get("retry-after")).toBe(String(s.config.server.retryAfterS));

    open.push(await connectWelcomed(`${s.ws}?token=${await s.token("fourth")}`));
    await same(await s.token("late"), 503, "unavailable");
    for (const c of open) c.close();
  });
});

describe("the per-user connection limit on one node", () => {
  test("a storm of one user's upgrades opens exactly the limit; a takeover at the limit keeps it; closing frees every slot", async () => {
    const s = await start();
    const max = s.config.limits.connectionsPerUser;
    const url = `${s.ws}?token=${await s.token("stormy")}`;
    const storm = await Promise.allSettled(Array.from({ length: max + 5 }, () => connectWelcomed(url)));
    const open = storm.flatMap((t) => (t.status === "fulfilled" ? [t.value] : []));
    expect(open.length).toBe(max);

    const [first, ...rest] = open;
    const taker = await connectWelcomed(`${url}&session=${first!.welcome.session}`);
    const atLimit = (await upgradeStatus(url)).status;
    const firstClosed = (await first!.closed).code;
    expect({ resumed: taker.welcome.resumed, atLimit, firstClosed, afterClose: (await upgradeStatus(url)).status }).toEqual({ resumed: true, atLimit: 429, firstClosed: 1000, afterClose: 429 });

    for (const c of [taker, ...rest]) {
      c.close();
      await c.closed;
    }
    const again = await Promise.allSettled(Array.from({ length: max + 1 }, () => connectWelcomed(url)));
    expect(again.map((t) => t.status).sort()).toEqual([...Array(max).fill("fulfilled"), "rejected"]);
    for (const t of again) if (t.status === "fulfilled") t.value.close();
  });
});

describe("client IPs and the per-IP upgrade limit", () => {
  const garbage = "garbage-token";

  test("runs before the token is verified: past the rate, even a bad token is 429 rate_limited with Retry-After", async () => {
    // A clock that stands still: no bucket refills between the attempts, however slow the machine.
    const s = await start({ config: { limits: { upgradesPerIpPerSec: 3 } }, now: () => 1_700_000_000_000 });
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await upgradeStatus(`${s.ws}?token=${garbage}`)).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    const limited = await upgradeStatus(`${s.ws}?token=${garbage}`);
    expect(limited.headers.get("retry-after")).toBe("1");
    expect(await limited.json()).toMatchObject({ error: "rate_limited", reason: "rate_limited" });
  });

  test("X-Forwarded-For is believed only from a trusted proxy: each client then has its own bucket", async () => {
    const still = () => 1_700_000_000_000;
    const trusting = await start({ config: { limits: { upgradesPerIpPerSec: 2 }, server: { trustedProxies: ["127.0.0.1"] } }, now: still });
    const from = (ip: string) => upgradeStatus(`${trusting.ws}?token=${garbage}`, { "x-forwarded-for": `198.51.100.9, ${ip}` });
    expect([(await from("203.0.113.1")).status, (await from("203.0.113.1")).status, (await from("203.0.113.1")).status]).toEqual([401, 401, 429]);
    expect((await from("203.0.113.2")).status).toBe(401);
    const lines = trusting.logs.filter((l) => l.includes("upgrade refused")).map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.ip, l.status])).toEqual([["203.0.113.1", 401], ["203.0.113.1", 401], ["203.0.113.1", 429], ["203.0.113.2", 401]]);

    const untrusting = await start({ config: { limits: { upgradesPerIpPerSec: 2 } }, now: still });
    const spoofed = (ip: string) => upgradeStatus(`${untrusting.ws}?token=${garbage}`, { "x-forwarded-for": ip });
    expect([(await spoofed("203.0.113.1")).status, (await spoofed("203.0.113.2")).status, (await spoofed("203.0.113.3")).status]).toEqual([401, 401, 429]);
    const ips = untrusting.logs.filter((l) => l.includes("upgrade refused")).map((l) => JSON.parse(l).ip);
    expect(new Set(ips)).toEqual(new Set(["127.0.0.1"]));
  });

  test("refusal lines carry reason, status, IP and user, never the token, and are sampled with a count of the rest", async () => {
    let clock = Date.now();
    const s = await start({ now: () => clock });
    const expired = await s.token("expired-user", { ttlS: -60 });
    for (let i = 0; i < 40; i++) await upgradeStatus(s.ws, { authorization: `Bearer ${expired}` });
    const lines = s.logs.filter((l) => l.includes("upgrade refused"));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThan(40);
    expect(JSON.parse(lines[0]!)).toMatchObject({ msg: "upgrade refused", reason: "token_expired", status: 401, ip: "127.0.0.1" });
    const all = s.logs.join("\n");
    expect(all).not.toContain(expired);
    expect(all).not.toContain(expired.split(".")[1]!);
    // The lines left out are counted on the next line written, once the second has passed.
    clock += 1000;
    await upgradeStatus(s.ws, { authorization: `Bearer ${expired}` });
    const last = JSON.parse(s.logs.filter((l) => l.includes("upgrade refused")).at(-1)!);
    expect(last.suppressed).toBe(40 - lines.length);
  });
});

describe("the SDK reports refusals from /v1/ws/check", () => {
  async function statusUntil(client: CourierClient, done: (c: StatusChange) => boolean): Promise<StatusChange[]> {
    const seen: StatusChange[] = [];
    const finished = Promise.withResolvers<void>();
    client.on("status", (c) => {
      seen.push(c);
      if (done(c)) finished.resolve();
    });
    client.connect();
    await finished.promise;
    return seen;
  }

  test("an expired fixed token: offline with reason token_expired (no loop)", async () => {
    const s = await start();
    const client = new CourierClient({ url: s.ws, token: await s.token("stale", { ttlS: -60 }) });
    const seen = await statusUntil(client, (c) => c.status === "offline");
    expect(seen.at(-1)).toEqual({ status: "offline", reason: "token_expired", polling: false });
    client.close();
  });

  test("a user at the connection limit: connecting with reason too_many_connections, and live once a slot frees", async () => {
    const s = await start({ config: { server: { retryAfterS: 1 } } });
    const token = await s.token("busy");
    const open = [];
    for (let i = 0; i < s.config.limits.connectionsPerUser; i++) open.push(await connectWelcomed(`${s.ws}?token=${token}`));
    const client = new CourierClient({ url: s.ws, token });
    const seen = await statusUntil(client, (c) => c.reason === "too_many_connections");
    expect(seen.at(-1)).toMatchObject({ status: "connecting", reason: "too_many_connections" });
    const live = Promise.withResolvers<void>();
    client.on("status", (c) => c.status === "live" && live.resolve());
    open.pop()!.close();
    await live.promise;
    client.close();
    for (const c of open) c.close();
  });
});
