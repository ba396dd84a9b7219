/**
 * A page on another origin, in real Chromium (Debian's package via playwright-core), using the SDK
 * against Courier: the subprotocol connect (no token in any URL), the polling fallback's
 * `/v1/history` with `Authorization` (a CORS preflight), and `/v1/ws/check` telling the page why
 * it was refused — an expired token, and a page origin the allowlist does not hold. The page is
 * served by a second `Bun.serve` on another port, reached as `127.0.0.1` (allowed) and as
 * `localhost` (not allowed). Chromium's console must never print the token.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { startServer, type TestServer } from "./helpers/server.ts";

const CHROMIUM = "/usr/bin/chromium";
const available = existsSync(CHROMIUM);
if (!available) {
  if (process.env.CI === "true") throw new Error(`browser test: ${CHROMIUM} is missing (CI must install Debian's chromium)`);
  console.warn(`browser CORS test skipped: ${CHROMIUM} not found (apt-get install chromium)`);
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>app</title>
<script type="module">import * as sdk from "/sdk.js"; window.sdk = sdk; document.title = "ready";</script>`;

let courier: TestServer;
let pages: ReturnType<typeof Bun.serve>;
let browser: Browser;
/** Every console line and page error Chromium printed, any page. */
const consoleLines: string[] = [];

beforeAll(async () => {
  if (!available) return;
  const built = await Bun.build({ entrypoints: [join(import.meta.dir, "../packages/client/src/index.ts")], target: "browser", format: "esm" });
  if (!built.success) throw new Error(`SDK build failed: ${built.logs.join("\n")}`);
  const sdk = await built.outputs[0]!.text();
  pages = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    routes: {
      "/": new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } }),
      "/sdk.js": new Response(sdk, { headers: { "content-type": "text/javascript; charset=utf-8" } }),
    },
    fetch: () => new Response("not found", { status: 404 }),
  });
  courier = await startServer({ config: { server: { allowedOrigins: [`http://127.0.0.1:${pages.port}`] } } });
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
});

afterAll(async () => {
  await browser?.close();
  pages?.stop(true);
  await courier?.stop();
});

async function openPage(host: "127.0.0.1" | "localhost"): Promise<Page> {
  const page = await browser.newPage();
  page.on("console", (m) => consoleLines.push(m.text()));
  page.on("pageerror", (e) => consoleLines.push(String(e)));
  await page.goto(`http://${host}:${pages.port}/`);
  await page.waitForFunction(() => document.title === "ready");
  return page;
}

/** Runs a client in the page until `until` holds for a status, an event arrives, or 10 s pass. */
async function runClient(page: Page, args: { options: Record<string, unknown>; channel?: string; since?: { epoch: string; offset: number } }) {
  return page.evaluate(
    ({ options, channel, since }) =>
      new Promise<{ statuses: { status: string; reason?: string; polling: boolean }[]; events: string[] }>((resolve) => {
        const statuses: { status: string; reason?: string; polling: boolean }[] = [];
        const events: string[] = [];
        const client = new (window as any).sdk.CourierClient(options);
        let finished = false;
        const done = () => {
          if (finished) return;
          finished = true;
          client.close();
          resolve({ statuses, events });
        };
        client.on("status", (s: { status: string; reason?: string; polling: boolean }) => {
          if (finished) return;
          statuses.push({ status: s.status, reason: s.reason, polling: s.polling });
          if (s.status === "offline") done();
        });
        if (channel) client.subscribe(channel, (e: { event: string }) => {
          events.push(e.event);
          done();
        }, since ? { since } : undefined);
        setTimeout(done, 10_000);
        client.connect();
      }),
    args,
  );
}

/** A port nothing listens on. */
function deadPort(): number {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = server.port!;
  server.stop(true);
  return port;
}

describe.skipIf(!available)("a page on another origin, in Chromium", () => {
  const tokens: string[] = [];
  const token = async (user: string, ttlS?: number) => {
    const t = await courier.token(user, ttlS === undefined ? {} : { ttlS });
    tokens.push(t);
    return t;
  };

  test("connects with the token as a subprotocol, live, and receives an event", async () => {
    const published = await (await courier.publish({ channel: "user:alice", event: "hello_ws", data: null })).json();
    const page = await openPage("127.0.0.1");
    const result = await runClient(page, { options: { url: courier.ws, token: await token("alice") }, channel: "user:alice", since: { epoch: published.epoch, offset: 0 } });
    expect(result.events).toEqual(["hello_ws"]);
    expect(result.statuses.map((s) => s.status)).toEqual(["connecting", "live"]);
    await page.close();
  }, 30_000);

  test("the polling fallback reads /v1/history with Authorization across origins (a preflight)", async () => {
    const published = await (await courier.publish({ channel: "user:bob", event: "hello_polling", data: null })).json();
    const page = await openPage("127.0.0.1");
    const result = await runClient(page, {
      options: { url: `ws://127.0.0.1:${deadPort()}/v1/ws`, httpBase: courier.http, token: await token("bob"), pollAfterFailures: 1 },
      channel: "user:bob",
      since: { epoch: published.epoch, offset: 0 },
    });
    expect(result.events).toEqual(["hello_polling"]);
    expect(result.statuses.some((s) => s.polling)).toBe(true);
    await page.close();
  }, 30_000);

  test("an expired token: /v1/ws/check tells the page token_expired, and the client stops", async () => {
    const page = await openPage("127.0.0.1");
    const result = await runClient(page, { options: { url: courier.ws, token: await token("carol", -60) } });
    expect(result.statuses.at(-1)).toEqual({ status: "offline", reason: "token_expired", polling: false });
    await page.close();
  }, 30_000);

  test("a page origin the allowlist does not hold: forbidden_origin, and the client stops", async () => {
    const page = await openPage("localhost");
    const result = await runClient(page, { options: { url: courier.ws, token: await token("dave") } });
    expect(result.statuses.at(-1)).toEqual({ status: "offline", reason: "forbidden_origin", polling: false });
    await page.close();
  }, 30_000);

  test("Chromium's console reported the failed connects, and never a token", () => {
    expect(consoleLines.some((l) => l.includes("WebSocket connection to"))).toBe(true);
    for (const t of tokens) expect(consoleLines.filter((l) => l.includes(t) || l.includes(t.split(".")[1]!))).toEqual([]);
  });
});
