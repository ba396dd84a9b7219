/**
 * The admin page (`/admin`) in real Chromium against a real server: log in with the admin key
 * (a wrong key refused), then each part — nodes with their connections, connections by tier,
 * readiness and breakers, live updates, publishing, the history browser, presence of a watched
 * channel and disconnecting a user. The key is in no URL and the console stays clean. The admin
 * history route is also tested over plain HTTP, and with two nodes on Redis (history written on
 * one node read on the other; the page lists both nodes). A screenshot goes to
 * tests/artifacts/admin-page.png.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { CloseCode } from "../src/protocol/codes.ts";
import { connectWelcomed, type TestClient } from "./helpers/client.ts";
import { startRedisNode } from "./helpers/redis-node.ts";
import { API_KEY, startServer, type TestServer } from "./helpers/server.ts";
import { deleteKeys, describeRedis } from "./redis-env.ts";

const CHROMIUM = "/usr/bin/chromium";
const available = existsSync(CHROMIUM);
if (!available) {
  if (process.env.CI === "true") throw new Error(`admin page test: ${CHROMIUM} is missing (CI must install Debian's chromium)`);
  console.warn(`admin page test skipped: ${CHROMIUM} not found (apt-get install chromium)`);
}
const ARTIFACTS = join(import.meta.dir, "artifacts");

describe("GET /admin/api/history", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
    for (let n = 1; n <= 5; n++) expect((await server.publish({ channel: "user:hist", event: `e${n}`, data: { n } })).status).toBe(200);
  });
  afterAll(() => server.stop());
  const history = (query: string, key: string | null = API_KEY) =>
    fetch(`${server.http}/admin/api/history?${query}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });

  test("answers the last events of any channel with the admin key", async () => {
    const res = await history("channel=user:hist&limit=2");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { channel: string; offset: number; epoch: string; events: { offset: number; event: string }[] };
    expect({ ...body, epoch: typeof body.epoch, events: body.events.map((e) => [e.offset, e.event]) }).toEqual({
      channel: "user:hist",
      offset: 5,
      epoch: "string",
      events: [[4, "e4"], [5, "e5"]],
    });
    const after = (await (await history("channel=user:hist&since=1&limit=2")).json()) as { events: { offset: number }[] };
    expect(after.events.map((e) => e.offset)).toEqual([2, 3]);
  });

  test("refuses a missing or wrong key, and a bad channel or limit, with JSON errors", async () => {
    for (const [query, key, status] of [
      ["channel=user:hist", null, 401],
      ["channel=user:hist", "wrong-key-0123456789", 401],
      ["channel=nope", API_KEY, 400],
      ["channel=user:hist&limit=0", API_KEY, 400],
      ["channel=user:hist&limit=201", API_KEY, 400],
      ["channel=user:hist&since=-1", API_KEY, 400],
    ] as const) {
      const res = await history(query, key);
      expect({ query, key, status: res.status, error: typeof ((await res.json()) as { error?: string }).error }).toEqual({ query, key, status, error: "string" });
    }
  });

  test("never takes the key from the URL", async () => {
    const res = await fetch(`${server.http}/admin/api/history?channel=user:hist&key=${API_KEY}&token=${API_KEY}`);
    expect(res.status).toBe(401);
  });
});

/** Console errors and warnings, failed requests and 4xx/5xx answers, and every URL requested. */
function watch(page: Page) {
  const problems: string[] = [];
  const urls: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("request", (r) => urls.push(r.url()));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  return { problems, urls };
}

describe.skipIf(!available)("admin page in Chromium", () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let seen: ReturnType<typeof watch>;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    server = await startServer();
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    seen = watch(page);
  }, 30_000);
  afterAll(async () => {
    for (const c of clients) c.close();
    await browser?.close();
    await server.stop();
  });

  test("logs in with the admin key: nodes, tiers, readiness, breakers, live updates, publish, history", async () => {
    await page.goto(`${server.http}/admin`);
    await page.waitForSelector("#login:not([hidden])");

    // A wrong key is refused on the page (its 401 is the one expected failure).
    await page.fill("#admin-key", "not-the-admin-key-0123");
    await page.click('#login-form button[type="submit"]');
    await page.waitForSelector("#login-error:not([hidden])");
    expect(await page.textContent("#login-error")).toContain("refused");
    expect(seen.problems.splice(0).sort()).toEqual([
      expect.stringMatching(/^HTTP 401: .*\/ws\/stats$/),
      expect.stringContaining("console error: Failed to load resource: the server responded with a status of 401"),
    ]);

    await page.fill("#admin-key", API_KEY);
    await page.click('#login-form button[type="submit"]');
    await page.waitForSelector('#node-rows tr[data-node="test-node"]');
    expect(await page.evaluate(() => sessionStorage.getItem("courier:admin-key"))).toBe(API_KEY);
    expect(await page.textContent('#node-rows tr[data-node="test-node"] .connections')).toBe("0");
    await page.waitForSelector('#readiness[data-status="ready"]');
    await page.waitForSelector('#checks li[data-check="store"][data-ok="true"]');
    await page.waitForSelector('#breakers li[data-breaker="store"][data-state="closed"]');

    // Live: connections made now show up on the next refresh, by node and by tier.
    clients.push(await connectWelcomed(`${server.ws}?token=${await server.token("bob", { tier: "pro" })}`));
    clients.push(await connectWelcomed(`${server.ws}?token=${await server.token("carol", { tier: "starter" })}`));
    await clients[0]!.request({ type: "subscribe", channel: "user:bob" });
    await page.waitForSelector('#node-rows tr[data-node="test-node"] .connections:text-is("2")', { timeout: 5000 });
    expect(await page.textContent('#tier-counts dd[data-tier="pro"]')).toBe("1");
    expect(await page.textContent('#tier-counts dd[data-tier="starter"]')).toBe("1");

    // Publish with the key (the admin key is the API key here): bob receives it.
    await page.fill("#publish-channel", "user:bob");
    await page.fill("#publish-event", "admin_note");
    await page.fill("#publish-data", '{"text":"hello from admin"}');
    await page.check("#publish-critical");
    await page.click('#publish-form button[type="submit"]');
    await page.waitForSelector('#publish-result:text("offset 1")');
    const received = await clients[0]!.next((f) => f.type === "event" && f.event === "admin_note");
    expect({ data: received.data, critical: received.critical }).toEqual({ data: { text: "hello from admin" }, critical: true });

    // History browser.
    await page.fill("#history-channel", "user:bob");
    await page.click('#history-form button[type="submit"]');
    await page.waitForSelector('#history-rows tr[data-offset="1"][data-event="admin_note"]');
    expect(await page.textContent('#history-rows tr[data-offset="1"] .data')).toBe('{"text":"hello from admin"}');

    // The key went only in headers: no URL the page requested carries it; no part shows an error.
    expect(seen.urls.filter((url) => url.includes(API_KEY))).toEqual([]);
    expect(seen.problems).toEqual([]);
    expect(await page.$$eval(".error:not([hidden])", (items) => items.map((p) => p.textContent))).toEqual([]);
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 60_000);

  test("presence of a watched channel (live), disconnecting a user from it and from the form", async () => {
    await page.fill("#watch-channel", "user:bob");
    await page.click('#watch-form button[type="submit"]');
    await page.waitForSelector('#channel-rows tr[data-channel="user:bob"] .subscribers:text-is("1")');
    await page.waitForSelector('#channel-rows tr[data-channel="user:bob"] .users span[data-user="bob"]:text-is("bob (1)")');
    // The screenshot shows every part filled in: nodes, tiers, readiness, presence, history, the publish result.
    await page.screenshot({ path: join(ARTIFACTS, "admin-page.png"), fullPage: true });

    await page.click('#channel-rows tr[data-channel="user:bob"] button.disconnect[data-user="bob"]');
    expect((await clients[0]!.closed).code).toBe(CloseCode.Disconnected);
    await page.waitForSelector('#disconnect-result:text("bob: 1 connection closed")');
    await page.waitForSelector('#channel-rows tr[data-channel="user:bob"] .subscribers:text-is("0")', { timeout: 5000 });

    // The form disconnects too.
    await page.fill("#disconnect-user", "carol");
    await page.fill("#disconnect-reason", "maintenance");
    await page.click('#disconnect-form button[type="submit"]');
    expect((await clients[1]!.closed).code).toBe(CloseCode.Disconnected);
    await page.waitForSelector('#node-rows tr[data-node="test-node"] .connections:text-is("0")', { timeout: 5000 });

    expect(seen.urls.filter((url) => url.includes(API_KEY))).toEqual([]);
    expect(seen.problems).toEqual([]);
    expect(await page.$$eval(".error:not([hidden])", (items) => items.map((p) => p.textContent))).toEqual([]);
  }, 60_000);
});

describeRedis("admin page across two nodes", (redisUrl) => {
  const PREFIX = `courier-admin-${crypto.randomUUID().slice(0, 8)}`;
  let a: TestServer;
  let b: TestServer;
  const node = (nodeId: string) => startRedisNode(redisUrl, nodeId, `${PREFIX}:`);
  beforeAll(async () => {
    a = await node("admin-a");
    b = await node("admin-b");
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await deleteKeys(redisUrl, `${PREFIX}:`);
  });

  test("the history route on node B reads what node A stored", async () => {
    for (const n of [1, 2, 3]) expect((await a.publish({ channel: "public:ops", event: `n${n}` })).status).toBe(200);
    const res = await fetch(`${b.http}/admin/api/history?channel=public:ops&limit=2`, { headers: { authorization: `Bearer ${API_KEY}` } });
    const body = (await res.json()) as { offset: number; events: { offset: number; event: string }[] };
    expect({ status: res.status, offset: body.offset, events: body.events.map((e) => e.event) }).toEqual({ status: 200, offset: 3, events: ["n2", "n3"] });
  });

  test.skipIf(!available)("the page on node A lists both nodes with their own connections", async () => {
    const onB = await connectWelcomed(`${b.ws}?token=${await b.token("dave")}`);
    const { chromium } = await import("playwright-core");
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
    try {
      const page = await browser.newPage();
      const seen = watch(page);
      await page.goto(`${a.http}/admin`);
      await page.fill("#admin-key", API_KEY);
      await page.click('#login-form button[type="submit"]');
      // Node B reports its stats every cluster.statsIntervalMs; the page polls every 2 s.
      await page.waitForSelector('#node-rows tr[data-node="admin-b"] .connections:text-is("1")', { timeout: 10_000 });
      expect(await page.textContent('#node-rows tr[data-node="admin-a"] .connections')).toBe("0");
      expect(await page.textContent('#tier-counts dd[data-tier="starter"]')).toBe("1");
      expect(seen.problems).toEqual([]);
    } finally {
      onB.close();
      await browser.close();
    }
  }, 60_000);
});
