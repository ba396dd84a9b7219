/**
 * The closing handshake's decisions on a fake scheduler and a fake socket: the close goes out on
 * the probe's pong, or at the wait's end ("not yet" at CLOSE_WAIT_MS - 1, "now" at CLOSE_WAIT_MS),
 * never twice; and the drain's 503 guard. Through Bun and nginx: tests/proxy-nginx.test.ts.
 */
import { describe, expect, test } from "bun:test";
import type { ServerWebSocket } from "bun";
import { CLOSE_WAIT_MS, closeAfterPong, closingPong, forgetClosing } from "../../src/connection/close-handshake.ts";
import { newConnData, type ConnData } from "../../src/connection/conn-data.ts";
import { ConnectionManager } from "../../src/connection/manager.ts";
import { CloseCode } from "../../src/protocol/codes.ts";
import { drainGrace, refuseWhileDraining } from "../../src/server/drain.ts";
import { HttpError } from "../../src/server/http.ts";
import { createLogger } from "../../src/telemetry/index.ts";
import { FakeScheduler } from "../helpers/fake-scheduler.ts";

/** The members of Bun's socket the handshake uses, recording what it does. */
class FakeWs {
  pings: string[] = [];
  closes: { code: number; reason: string }[] = [];
  sent: string[] = [];
  constructor(
    readonly data: ConnData,
    private readonly pingResult = 1,
  ) {}
  ping(payload: string): number {
    this.pings.push(payload);
    return this.pingResult;
  }
  send(text: string): number {
    this.sent.push(text);
    return text.length;
  }
  close(code: number, reason: string): void {
    this.closes.push({ code, reason });
  }
}

function socket(pingResult = 1) {
  const data = newConnData({ user: "u1", tier: "starter", channels: new Set(), exp: Date.now() / 1000 + 3600, tierFromToken: true }, "s1", null, 0, 10);
  const fake = new FakeWs(data, pingResult);
  /** What the close handler does when Bun reports the close. */
  const reportClosed = () => {
    data.closed = true;
    forgetClosing(data);
  };
  return { fake, ws: fake as unknown as ServerWebSocket<ConnData>, reportClosed };
}

const pongOf = (payload: string) => new TextEncoder().encode(payload);

describe("closeAfterPong", () => {
  test("pings once, and closes with the decided code when that ping's pong comes back", () => {
    const scheduler = new FakeScheduler();
    const { fake, ws } = socket();
    closeAfterPong(ws, CloseCode.ProtocolErrors, "too many protocol errors", { scheduler });
    expect({ pings: fake.pings.length, closes: fake.closes }).toEqual({ pings: 1, closes: [] });
    expect(closingPong(ws, pongOf(fake.pings[0]!))).toBe(true);
    expect(fake.closes).toEqual([{ code: CloseCode.ProtocolErrors, reason: "too many protocol errors" }]);
    expect(scheduler.pending).toBe(0);
  });

  test("another pong (a heartbeat's) does not close", () => {
    const scheduler = new FakeScheduler();
    const { fake, ws } = socket();
    closeAfterPong(ws, CloseCode.TooManyFrames, "too many frames", { scheduler });
    expect(closingPong(ws, new Uint8Array())).toBe(false);
    expect(closingPong(ws, undefined)).toBe(false);
    expect(fake.closes).toEqual([]);
  });

  test("without a pong: not yet at CLOSE_WAIT_MS - 1, closed at CLOSE_WAIT_MS", () => {
    const scheduler = new FakeScheduler();
    const { fake, ws } = socket();
    closeAfterPong(ws, CloseCode.ServiceRestart, "server restart", { scheduler });
    scheduler.advance(CLOSE_WAIT_MS - 1);
    expect(fake.closes).toEqual([]);
    scheduler.advance(1);
    expect(fake.closes).toEqual([{ code: CloseCode.ServiceRestart, reason: "server restart" }]);
  });

  test("a second decision keeps the first; a late pong after the close does nothing", () => {
    const scheduler = new FakeScheduler();
    const { fake, ws, reportClosed } = socket();
    closeAfterPong(ws, CloseCode.ProtocolErrors, "first", { scheduler });
    closeAfterPong(ws, CloseCode.TooManyFrames, "second", { scheduler });
    expect(fake.pings.length).toBe(1);
    scheduler.advance(CLOSE_WAIT_MS);
    reportClosed();
    expect(closingPong(ws, pongOf(fake.pings[0]!))).toBe(false);
    expect(fake.closes).toEqual([{ code: CloseCode.ProtocolErrors, reason: "first" }]);
  });

  test("a ping Bun drops (0: the socket is over its buffer) closes at once: no pong can come", () => {
    const scheduler = new FakeScheduler();
    const { fake, ws } = socket(0);
    closeAfterPong(ws, CloseCode.TooManyFrames, "too many frames", { scheduler });
    expect(fake.closes).toEqual([{ code: CloseCode.TooManyFrames, reason: "too many frames" }]);
    expect(scheduler.pending).toBe(0);
  });

  test("the client closing first cancels the wait", () => {
    const scheduler = new FakeScheduler();
    const { fake, ws, reportClosed } = socket();
    closeAfterPong(ws, CloseCode.ProtocolErrors, "too many protocol errors", { scheduler });
    reportClosed();
    expect(scheduler.pending).toBe(0);
    scheduler.advance(CLOSE_WAIT_MS);
    expect(fake.closes).toEqual([]);
  });
});

describe("drain", () => {
  test("drainGrace: draining at once, reconnect + handshake for each client, resolves only when the grace is over with every close sent", async () => {
    const scheduler = new FakeScheduler();
    const manager = new ConnectionManager({ scheduler });
    const a = socket();
    manager.add(a.ws);
    let phase: "ready" | "draining" = "ready";
    const gate = { get phase() { return phase; }, markDraining: () => void (phase = "draining") };
    let done = false;
    const draining = drainGrace({ gate, manager, scheduler, graceMs: 2000, spreadMs: 1000, log: createLogger({ level: "error", sink: () => {} }) }).then(() => {
      done = true;
    });
    expect(gate.phase as string).toBe("draining");
    expect(a.fake.sent.map((t) => JSON.parse(t))).toEqual([{ type: "reconnect", reason: "restart", after: 0 }]);
    expect(a.fake.closes).toEqual([]); // waiting for the pong
    // A client whose upgrade was accepted just before the drain opens during it.
    const late = socket();
    manager.add(late.ws);
    scheduler.advance(1999);
    await Promise.resolve();
    expect(done).toBe(false);
    expect(a.fake.closes).toEqual([{ code: CloseCode.ServiceRestart, reason: "server restart" }]); // its wait ended at 1000
    scheduler.advance(1);
    await draining;
    expect(late.fake.sent.map((t) => JSON.parse(t).type)).toEqual(["reconnect"]);
    expect(late.fake.closes).toEqual([{ code: CloseCode.ServiceRestart, reason: "server restart" }]);
  });

  test("refuseWhileDraining: POST answers 503 with Retry-After once draining; GET is still served", async () => {
    let phase = "ready";
    const guarded = refuseWhileDraining({ GET: () => new Response("read"), POST: () => new Response("written") }, { gate: { get phase() { return phase as "ready"; } }, retryAfterS: 3 });
    const url = new URL("http://x/v1/publish");
    expect(await (await guarded.POST!(new Request(url), url)).text()).toBe("written");
    phase = "draining";
    expect(await (await guarded.GET!(new Request(url), url)).text()).toBe("read");
    let thrown: unknown;
    try {
      await guarded.POST!(new Request(url, { method: "POST" }), url);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(HttpError);
    expect({ status: (thrown as HttpError).status, retryAfterS: (thrown as HttpError).options.retryAfterS }).toEqual({ status: 503, retryAfterS: 3 });
  });
});
