/**
 * The sweep's 4408 (stale) decisions with a fake clock and fake sockets: "not yet" at the
 * timeout, "now" one millisecond later. Through the real server: tests/delivery.test.ts.
 */
import { describe, expect, test } from "bun:test";
import type { ServerWebSocket } from "bun";
import { ConnectionManager, type SweepHooks, type SweepOptions } from "../../src/connection/manager.ts";
import { newConnData, type ConnData } from "../../src/connection/conn-data.ts";
import { newSubscription, setSub, subOf } from "../../src/connection/subs.ts";
import { CloseCode } from "../../src/protocol/codes.ts";

const OPTIONS: SweepOptions = { heartbeatMs: 15_000, confirmTimeoutMs: 5_000, probeTimeoutMs: 5_000, slowConsumerBytes: 1 << 20, clockToleranceS: 0 };
const T0 = 1_700_000_000_000;
const CH = "user:u1";

/** The members of Bun's socket the sweep uses, recording what it does. */
class FakeWs {
  pings = 0;
  closedWith: { code: number; reason: string } | null = null;
  constructor(readonly data: ConnData) {}
  ping(): number {
    this.pings++;
    return 1;
  }
  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
    // What the close handler does when Bun reports the close.
    this.data.closed = true;
  }
  getBufferedAmount(): number {
    return 0;
  }
}

/** A manager holding one connection opened at T0 (token valid for an hour), joined to `CH`. */
function setup(unacked: { ts: number; count: number } | null) {
  const manager = new ConnectionManager();
  const data = newConnData({ user: "u1", tier: "starter", channels: new Set(), exp: T0 / 1000 + 3600, tierFromToken: true }, "s1", null, T0, 10);
  setSub(data, { ...newSubscription(CH), epoch: "e1", joinedAt: T0, ready: true });
  const ws = new FakeWs(data);
  manager.add(ws as unknown as ServerWebSocket<ConnData>);
  const closes: Array<{ code: CloseCode; detail?: { unconfirmed?: number } }> = [];
  const hooks: SweepHooks = {
    // Critical events up to offset `unacked.count` are unconfirmed until the subscription acks them.
    oldestUnacked: (_channel, after) => (unacked && after < unacked.count ? { ts: unacked.ts, count: unacked.count - after } : null),
    onClose: (code, _data, detail) => closes.push(detail ? { code, detail } : { code }),
  };
  /** The client sent a frame at `t`, as the message handler records it. */
  const heard = (t: number) => {
    data.lastSeen = t;
  };
  return { manager, ws, data, hooks, closes, heard, sweep: (t: number) => manager.sweep(t, OPTIONS, hooks) };
}

describe("sweep: no pong in time", () => {
  test("a connection silent for two heartbeats and a second is pinged first, then closed 4408 one ms past the limit", () => {
    const c = setup(null);
    c.sweep(T0 + OPTIONS.heartbeatMs);
    expect(c.ws.pings).toBe(0);
    c.sweep(T0 + OPTIONS.heartbeatMs + 1);
    expect(c.ws.pings).toBe(1);

    const limit = T0 + 2 * OPTIONS.heartbeatMs + 1000;
    c.sweep(limit);
    expect(c.ws.closedWith).toBeNull();
    c.sweep(limit + 1);
    expect(c.ws.closedWith).toEqual({ code: CloseCode.Stale, reason: "no pong in time" });
    expect(c.closes).toEqual([{ code: CloseCode.Stale }]);
  });

  test("a connection heard from within the heartbeat is neither pinged nor closed", () => {
    const c = setup(null);
    for (let t = T0; t <= T0 + 10 * OPTIONS.heartbeatMs; t += 1000) {
      c.heard(t);
      c.sweep(t + 999);
    }
    expect([c.ws.pings, c.ws.closedWith]).toEqual([0, null]);
  });
});

describe("sweep: critical events unconfirmed", () => {
  test("probed one ms past confirmTimeoutMs, closed 4408 with the count one ms past probeTimeoutMs", () => {
    const c = setup({ ts: T0, count: 2 });
    const probeAt = T0 + OPTIONS.confirmTimeoutMs + 1;
    c.heard(probeAt - 1);
    c.sweep(probeAt - 1);
    expect(c.ws.pings).toBe(0);
    c.sweep(probeAt);
    expect([c.ws.pings, c.data.probeAt]).toEqual([1, probeAt]);

    // The client keeps talking but never answers the probe nor acks.
    c.heard(probeAt + OPTIONS.probeTimeoutMs);
    c.sweep(probeAt + OPTIONS.probeTimeoutMs);
    expect([c.ws.pings, c.ws.closedWith]).toEqual([1, null]);
    c.sweep(probeAt + OPTIONS.probeTimeoutMs + 1);
    expect(c.ws.closedWith).toEqual({ code: CloseCode.Stale, reason: "critical events unconfirmed" });
    expect(c.closes).toEqual([{ code: CloseCode.Stale, detail: { unconfirmed: 2 } }]);
  });

  test("the overdue time counts from the join when the event is older than the subscription", () => {
    const c = setup({ ts: T0 - 60_000, count: 1 });
    c.heard(T0 + OPTIONS.confirmTimeoutMs);
    c.sweep(T0 + OPTIONS.confirmTimeoutMs);
    expect(c.ws.pings).toBe(0);
    c.sweep(T0 + OPTIONS.confirmTimeoutMs + 1);
    expect(c.ws.pings).toBe(1);
  });

  test("a pong to the probe keeps the connection; a subscription that acked is never probed", () => {
    const c = setup({ ts: T0, count: 2 });
    const probeAt = T0 + OPTIONS.confirmTimeoutMs + 1;
    c.heard(probeAt);
    c.sweep(probeAt);
    // What the pong handler does.
    Object.assign(c.data, { lastSeen: probeAt + 10, probeAt: 0, lastProbeOk: probeAt + 10 });
    c.sweep(probeAt + OPTIONS.probeTimeoutMs + 1);
    expect(c.ws.closedWith).toBeNull();

    subOf(c.data, CH)!.acked = 2;
    for (let t = probeAt; t <= probeAt + 4 * OPTIONS.confirmTimeoutMs; t += 1000) {
      c.heard(t);
      c.sweep(t);
    }
    expect([c.ws.pings, c.ws.closedWith]).toEqual([1, null]);
  });
});
