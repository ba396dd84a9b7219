/**
 * Courier behind a real nginx (Debian's package), with the shipped `deploy/nginx.conf`: close codes
 * and the error frames before them (PROTOCOL §4 v1.1, the closing handshake), the SDK's stop on
 * 4400, and the drain grace (§1 v1.1) as a proxy sees it. Also the Bun defect the handshake works
 * around, at the TCP level, straight to Courier.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CourierClient } from "../packages/client/src/index.ts";
import { CLOSE_WAIT_MS } from "../src/connection/close-handshake.ts";
import { signToken } from "../src/auth/tokens.ts";
import { CloseCode, ErrorCode } from "../src/protocol/codes.ts";
import { connectWelcomed, upgradeStatus } from "./helpers/client.ts";
import { defaultLingeringClose, findNginx, startNginx, type Nginx } from "./helpers/nginx.ts";
import { describeWithTool } from "./helpers/ops-tool.ts";
import { spawnCourier, type CourierProcess } from "./helpers/process.ts";
import { rawConnect, type RawClient } from "./helpers/raw-client.ts";
import { API_KEY, JWT_SECRET, startServer, type TestServer } from "./helpers/server.ts";

/** Connections per scenario: enough that a race lost one time in four cannot hide. */
const RUNS = 20;

/**
 * A client that, once welcomed, sends `frame` `count` times (`perTick` per event-loop turn), and
 * resolves with what it saw when the connection ends: the close code (1006 when none arrived) and
 * the error frames before it.
 */
async function misbehave(url: string, frame: unknown, count: number, perTick: number): Promise<{ code: number; errors: string[] }> {
  const client = await rawConnect(url, { answerPings: true });
  client.socket.on("error", () => {}); // an RST from the proxy ends the run: the outcome is what arrived
  await client.next((f) => f.type === "welcome");
  let done = false;
  void (async () => {
    for (let i = 0; i < count && !done && !client.socket.destroyed; i++) {
      client.send(frame);
      if ((i + 1) % perTick === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  const code = await client.closed;
  done = true;
  client.destroy();
  return { code, errors: client.frames.filter((f) => f.type === "error").map((f) => f.code) };
}

/** Outcome counts, e.g. `{"4400 + 20 errors": 20}`, printed and compared whole. */
function tally(outcomes: { code: number; errors: string[] }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) {
    const key = `${o.code} + ${o.errors.length} errors`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

async function runs(n: number, one: () => Promise<{ code: number; errors: string[] }>) {
  const outcomes = [];
  for (let i = 0; i < n; i++) outcomes.push(await one());
  return outcomes;
}

/** Debian installs nginx in /usr/sbin, which a non-root PATH may lack. */
const NGINX = findNginx() ?? "nginx";

describeWithTool("Courier behind nginx", NGINX, "apt-get install nginx", (nginxBinary) => {
  let server: TestServer;
  let shipped: Nginx;
  let defaults: Nginx;
  let token: string;
  beforeAll(async () => {
    server = await startServer();
    const upstream = `127.0.0.1:${server.courier.server.port}`;
    shipped = await startNginx(nginxBinary, { upstream });
    defaults = await startNginx(nginxBinary, { upstream, edit: defaultLingeringClose });
    token = await server.token("proxied");
  });
  afterAll(async () => {
    await shipped?.stop();
    await defaults?.stop();
    await server?.stop();
  });

  const limits = () => server.config.limits;
  /** Bad frames until the close: `protocolErrorStrikes` bad_request errors, then 4400. */
  const badFrames = () => limits().protocolErrorStrikes + 1;

  test("Bun's defect, straight to Courier: its Close frame comes with a FIN, without waiting for the client's Close", async () => {
    const client: RawClient = await rawConnect(`${server.ws}?token=${token}`, { answerPings: true });
    await client.next((f) => f.type === "welcome");
    const at: Record<string, number> = {};
    const fin = new Promise<void>((resolve) => client.socket.once("end", resolve)).then(() => (at.fin = performance.now()));
    const close = client.closed.then((code) => ((at.close = performance.now()), code));
    for (let i = 0; i < badFrames(); i++) client.send("not json");
    const [code] = await Promise.all([close, fin]);
    client.destroy();
    const gapMs = at.fin! - at.close!;
    console.log(`[tcp] straight to Courier, the client never sending its Close: Close ${code}, then FIN ${gapMs.toFixed(2)} ms later`);
    // A full closing handshake holds the FIN until the client's Close, or CLOSE_WAIT_MS (PROTOCOL §4).
    // When this fails, Bun has learned to wait: revisit close-handshake.ts and README "Behind a proxy".
    expect(code).toBe(CloseCode.ProtocolErrors);
    expect(gapMs).toBeGreaterThanOrEqual(0);
    expect(gapMs).toBeLessThan(CLOSE_WAIT_MS);
  });

  test("nginx defaults: a client that stops writing after its burst gets every error frame and 4400, every time", async () => {
    const outcomes = await runs(RUNS, () => misbehave(`${defaults.ws}?token=${token}`, "not json", badFrames() + 10, badFrames() + 10));
    console.log(`[nginx lingering_close on] burst of bad frames: ${JSON.stringify(tally(outcomes))}`);
    expect(tally(outcomes)).toEqual({ [`${CloseCode.ProtocolErrors} + ${limits().protocolErrorStrikes} errors`]: RUNS });
  });

  test("nginx defaults: a client that keeps writing gets every error frame; its close code is at the mercy of nginx (printed)", async () => {
    const flood = limits().frameBurst + limits().rateLimitStrikes + 500;
    const outcomes = await runs(RUNS, () => misbehave(`${defaults.ws}?token=${token}`, { type: "ping" }, flood, 20));
    const counts = tally(outcomes);
    console.log(`[nginx lingering_close on] flood: ${JSON.stringify(counts)} (1006: nginx closed on our FIN, the client's next write met an RST)`);
    // The close waits for the client's pong, so everything sent before it has been read.
    for (const o of outcomes) expect(o.errors.filter((c) => c === ErrorCode.RateLimited).length).toBeGreaterThanOrEqual(limits().rateLimitStrikes);
  });

  test("deploy/nginx.conf (lingering_close always): even a client that keeps writing gets every error frame and 4429, every time", async () => {
    const flood = limits().frameBurst + limits().rateLimitStrikes + 500;
    const outcomes = await runs(RUNS, () => misbehave(`${shipped.ws}?token=${token}`, { type: "ping" }, flood, 20));
    const counts = tally(outcomes);
    console.log(`[deploy/nginx.conf] flood: ${JSON.stringify(counts)}`);
    expect(Object.keys(counts).every((k) => k.startsWith(`${CloseCode.TooManyFrames} + `))).toBe(true);
    for (const o of outcomes) expect(o.errors.filter((c) => c === ErrorCode.RateLimited).length).toBeGreaterThanOrEqual(limits().rateLimitStrikes);
    const bursts = await runs(RUNS, () => misbehave(`${shipped.ws}?token=${token}`, "not json", badFrames() + 10, 20));
    console.log(`[deploy/nginx.conf] bad frames, kept writing: ${JSON.stringify(tally(bursts))}`);
    expect(tally(bursts)).toEqual({ [`${CloseCode.ProtocolErrors} + ${limits().protocolErrorStrikes} errors`]: RUNS });
  });

  test.each([
    ["deploy/nginx.conf", () => shipped],
    ["nginx defaults", () => defaults],
  ] as const)("the SDK through %s stops on 4400: offline with protocol_errors, and never dials again", async (name, proxy) => {
    let dials = 0;
    /** Bun's WebSocket, plus an app bug: bad frames right after open. */
    class BuggyApp extends WebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        dials++;
        this.addEventListener("open", () => {
          for (let i = 0; i < badFrames(); i++) this.send("not json");
        });
      }
    }
    const statuses: { status: string; reason?: string; code?: number }[] = [];
    const offline = Promise.withResolvers<void>();
    const client = new CourierClient({ url: proxy().ws, token, WebSocket: BuggyApp as never });
    client.on("status", (s) => {
      statuses.push({ status: s.status, reason: s.reason, code: s.code });
      if (s.status === "offline") offline.resolve();
    });
    client.connect();
    await offline.promise;
    const seen = [...statuses];
    client.close();
    console.log(`[${name}] SDK statuses: ${JSON.stringify(seen)}; dials: ${dials}`);
    expect({ dials, statuses: seen.map((s) => s.status), last: seen.at(-1) }).toEqual({
      dials: 1,
      statuses: ["connecting", "live", "offline"],
      last: { status: "offline", reason: "protocol_errors", code: CloseCode.ProtocolErrors },
    });
  });
});

describeWithTool("Drain behind nginx", NGINX, "apt-get install nginx", (nginxBinary) => {
  const dataDir = mkdtempSync(join(tmpdir(), "courier-nginx-drain-"));
  const GRACE_MS = 2000;
  let node: CourierProcess | undefined;
  let proxy: Nginx | undefined;
  afterAll(async () => {
    node?.kill("SIGKILL");
    await proxy?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test("SIGTERM: through nginx, connected clients get reconnect + 1012, new clients and publishes 503 JSON with Retry-After (not 502 HTML), then exit 0", async () => {
    node = await spawnCourier({ COURIER_DATA_DIR: dataDir, COURIER_SERVER__DRAIN_GRACE_MS: String(GRACE_MS), COURIER_SERVER__DRAIN_MS: String(GRACE_MS + 3000) });
    proxy = await startNginx(nginxBinary, { upstream: `127.0.0.1:${node.port}` });
    const token = await signToken(JWT_SECRET, { sub: "drained" }, 600);
    const connected = await connectWelcomed(`${proxy.ws}?token=${token}`);

    const signalledAt = performance.now();
    node.kill("SIGTERM");
    const hint = await connected.next((f) => f.type === "reconnect");
    // Inside the grace now: the node told its clients, and its listener still answers.
    const [ready, upgrade, publish] = await Promise.all([
      fetch(`${proxy.http}/ready`),
      upgradeStatus(`${proxy.ws}?token=${token}`),
      fetch(`${proxy.http}/v1/publish`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ channel: "user:drained", event: "x", data: 1 }) }),
    ]);
    const answeredAt = performance.now();
    const seen = await Promise.all(
      [ready, upgrade, publish].map(async (r) => ({ status: r.status, type: r.headers.get("content-type"), retryAfter: r.headers.get("retry-after"), body: await r.json().catch(() => "not JSON") })),
    );
    console.log(`[nginx drain] ${JSON.stringify(seen)} within ${Math.round(answeredAt - signalledAt)} ms of SIGTERM (grace ${GRACE_MS} ms)`);
    expect(answeredAt - signalledAt).toBeLessThan(GRACE_MS); // the answers above came from inside the grace
    for (const s of seen) {
      expect(s.status).toBe(503);
      expect(s.type).toContain("application/json");
      expect(Number(s.retryAfter)).toBeGreaterThan(0);
    }
    expect(seen[0]!.body).toMatchObject({ status: "draining" });
    expect(seen[1]!.body).toMatchObject({ error: ErrorCode.Unavailable });
    expect(seen[2]!.body).toMatchObject({ error: ErrorCode.Unavailable });
    expect(hint).toMatchObject({ type: "reconnect", reason: "restart" });
    expect((await connected.closed).code).toBe(CloseCode.ServiceRestart);
    expect(await node.exited).toBe(0);
  }, 30_000);
});
