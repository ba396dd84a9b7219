/**
 * The drain grace and fatal faults, with real processes (PROTOCOL §1 v1.1): on SIGTERM `/ready`
 * answers 503 at once, the listener keeps answering 503 JSON + `Retry-After` to new upgrades and
 * publishes for `server.drainGraceMs`, then closes, and the process exits 0; after startup an
 * uncaught exception drains and exits 1, an unhandled rejection is logged and the node serves on.
 * Through nginx: tests/proxy-nginx.test.ts.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signToken } from "../src/auth/tokens.ts";
import { CloseCode, ErrorCode } from "../src/protocol/codes.ts";
import { connectWelcomed, upgradeStatus } from "./helpers/client.ts";
import { spawnCourier, type CourierProcess } from "./helpers/process.ts";
import { API_KEY, JWT_SECRET } from "./helpers/server.ts";

const FAULTS = join(import.meta.dir, "fixtures/fault-on-signal.ts");
const GRACE_MS = 1500;

const dirs: string[] = [];
const children: CourierProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function node(env: Record<string, string> = {}, preload?: string): Promise<CourierProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), "courier-drain-grace-"));
  dirs.push(dataDir);
  const child = await spawnCourier(
    { COURIER_DATA_DIR: dataDir, COURIER_SERVER__DRAIN_GRACE_MS: String(GRACE_MS), COURIER_SERVER__DRAIN_MS: String(GRACE_MS + 3000), ...env },
    undefined,
    { preload },
  );
  children.push(child);
  return child;
}

function publish(http: string): Promise<Response> {
  return fetch(`${http}/v1/publish`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ channel: "user:grace", event: "x", data: 1 }) });
}

/** The log lines (JSON on stdout) with message `msg`. */
function logLines(output: string, msg: string): Record<string, unknown>[] {
  return output
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === msg);
}

describe("drain grace", () => {
  test("SIGTERM: /ready 503 at once; upgrades and publishes 503 JSON + Retry-After until the grace ends; then the listener closes and the process exits 0", async () => {
    const courier = await node();
    const token = await signToken(JWT_SECRET, { sub: "grace" }, 600);
    const connected = await connectWelcomed(`${courier.ws}?token=${token}`);
    expect((await publish(courier.http)).status).toBe(200);

    const signalledAt = performance.now();
    courier.kill("SIGTERM");
    await connected.next((f) => f.type === "reconnect");
    const ready = await fetch(`${courier.http}/ready`);
    expect({ status: ready.status, body: await ready.json(), retryAfter: ready.headers.get("retry-after") !== null }).toMatchObject({
      status: 503,
      body: { status: "draining" },
      retryAfter: true,
    });

    // Ask until the listener is gone: every answer until then is a readable 503.
    const answers: { status: number; error: unknown; retryAfter: string | null }[] = [];
    let lastAnsweredAt = 0;
    let refusedAt = 0;
    for (let i = 0; ; i++) {
      const response = await (i % 2 ? publish(courier.http) : upgradeStatus(`${courier.ws}?token=${token}`)).catch(() => null);
      if (!response) {
        refusedAt = performance.now();
        break;
      }
      lastAnsweredAt = performance.now();
      answers.push({ status: response.status, error: ((await response.json()) as { error?: unknown }).error, retryAfter: response.headers.get("retry-after") });
    }
    const code = await courier.exited;
    const exitedAt = performance.now();
    console.log(
      `[drain] ${answers.length} answers during the grace, the last ${Math.round(lastAnsweredAt - signalledAt)} ms after SIGTERM; ` +
        `listener closed by ${Math.round(refusedAt - signalledAt)} ms (grace ${GRACE_MS} ms); exit ${code} at ${Math.round(exitedAt - signalledAt)} ms`,
    );
    expect(answers.length).toBeGreaterThan(1);
    expect(answers.every((a) => a.status === 503 && a.error === ErrorCode.Unavailable && Number(a.retryAfter) > 0)).toBe(true);
    // The timer starts when the signal arrives, after `signalledAt`: the listener cannot have closed sooner.
    expect(refusedAt - signalledAt).toBeGreaterThanOrEqual(GRACE_MS);
    expect((await connected.closed).code).toBe(CloseCode.ServiceRestart);
    expect(code).toBe(0);
  }, 30_000);
});

describe("faults after startup", () => {
  test("an unhandled rejection is logged and the node keeps serving", async () => {
    const courier = await node({}, FAULTS);
    courier.kill("SIGHUP");
    await courier.printed('"msg":"unhandled rejection"');
    const [line] = logLines(courier.output(), "unhandled rejection");
    console.log(`[fault] ${JSON.stringify(line)}`);
    expect(line).toMatchObject({ level: "error", error: { name: "Error", message: "injected rejection (SIGHUP)" } });
    expect((await fetch(`${courier.http}/ready`)).status).toBe(200);
    expect((await publish(courier.http)).status).toBe(200);
    courier.kill("SIGTERM");
    expect(await courier.exited).toBe(0);
  }, 30_000);

  test("an uncaught exception is logged, then the node drains (reconnect + 1012, /ready 503) and exits 1", async () => {
    const courier = await node({}, FAULTS);
    const token = await signToken(JWT_SECRET, { sub: "fault" }, 600);
    const connected = await connectWelcomed(`${courier.ws}?token=${token}`);
    courier.kill("SIGUSR2");
    const hint = await connected.next((f) => f.type === "reconnect");
    const ready = await fetch(`${courier.http}/ready`);
    expect(ready.status).toBe(503);
    const code = await courier.exited;
    const [line] = logLines(courier.output(), "uncaught exception; draining, then exit 1");
    console.log(`[fault] ${JSON.stringify(line)}; exit ${code}`);
    expect(line).toMatchObject({ level: "error", error: { name: "Error", message: "injected fault (SIGUSR2)" } });
    expect(hint).toMatchObject({ type: "reconnect" });
    expect((await connected.closed).code).toBe(CloseCode.ServiceRestart);
    expect(code).toBe(1);
  }, 30_000);
});
