/**
 * A single node's per-user slots counted with the connection manager (engine/local-slots.ts),
 * driven the way the upgrade and the WebSocket handler drive them: `acquireConnection` before the
 * upgrade, `manager.add` on open, `manager.remove` then `releaseConnection` on close (none after a
 * takeover), `releaseConnection` when an upgrade fails. Through the real server:
 * tests/edges-upgrade.test.ts. The port's own contract: tests/contract/engine-contract.ts.
 */
import { describe, expect, test } from "bun:test";
import type { ServerWebSocket } from "bun";
import { newConnData, type ConnData } from "../../src/connection/conn-data.ts";
import { ConnectionManager } from "../../src/connection/manager.ts";
import { LocalSlots } from "../../src/engine/local-slots.ts";

type WS = ServerWebSocket<ConnData>;
const MAX = 2;

function setup() {
  const slots = new LocalSlots();
  const manager = new ConnectionManager({ slots });
  slots.countOpenIn(manager);
  let sessions = 0;
  const socket = (user: string): WS => {
    const principal = { user, tier: "starter" as const, channels: new Set<string>(), exp: 0, tierFromToken: false };
    return { data: newConnData(principal, `s${++sessions}`, null, 0, 10) } as unknown as WS;
  };
  /** What the WebSocket handler's close does with the slot. */
  const close = async (ws: WS) => {
    manager.remove(ws);
    if (!ws.data.slotTransferred) await slots.releaseConnection(ws.data.user);
  };
  /** A fresh upgrade of `user` that opens: its slot, then its connection; null when refused. */
  const connect = async (user: string): Promise<WS | null> => {
    if (!(await slots.acquireConnection(user, MAX))) return null;
    const ws = socket(user);
    manager.add(ws);
    return ws;
  };
  return { slots, manager, socket, close, connect, acquire: (user: string) => slots.acquireConnection(user, MAX) };
}

describe("LocalSlots with the connection manager", () => {
  test("upgrades in flight hold their slots: a storm of one user gets exactly max, whether open or not yet", async () => {
    const s = setup();
    const storm = await Promise.all(Array.from({ length: 5 }, () => s.acquire("u")));
    expect(storm).toEqual([true, true, false, false, false]);
    s.manager.add(s.socket("u"));
    const oneOpen = await s.acquire("u");
    s.manager.add(s.socket("u"));
    expect({ oneOpen, bothOpen: await s.acquire("u"), other: await s.acquire("v") }).toEqual({ oneOpen: false, bothOpen: false, other: true });
  });

  test("a failed upgrade gives its slot back; a closed connection's slot frees on release, not before", async () => {
    const s = setup();
    const open = await s.connect("u");
    expect(await s.acquire("u")).toBe(true);
    await s.slots.releaseConnection("u");
    const afterFailed = await s.connect("u");
    s.manager.remove(open!);
    const closedNotReleased = await s.acquire("u");
    await s.slots.releaseConnection("u");
    expect({ afterFailed: afterFailed !== null, closedNotReleased, released: await s.acquire("u") }).toEqual({ afterFailed: true, closedNotReleased: false, released: true });
  });

  test("a takeover's new connection uses the old one's slot, whichever of open and close comes first", async () => {
    for (const order of ["open first", "close first"] as const) {
      const s = setup();
      const [old] = [await s.connect("u"), await s.connect("u")];
      // The resume took no slot; the old connection is closed with its slot transferred.
      old!.data.slotTransferred = true;
      const fresh = s.socket("u");
      if (order === "open first") s.manager.add(fresh);
      const during = await s.acquire("u");
      await s.close(old!);
      if (order === "close first") s.manager.add(fresh);
      const after = await s.acquire("u");
      await s.close(fresh);
      expect({ order, during, after, freed: await s.acquire("u") }).toEqual({ order, during: false, after: false, freed: true });
    }
  });

  test("every slot comes back once every connection has closed", async () => {
    const s = setup();
    const open = [await s.connect("u"), await s.connect("u"), await s.connect("v")];
    for (const ws of open) await s.close(ws!);
    expect([await s.acquire("u"), await s.acquire("u"), await s.acquire("u"), s.manager.size]).toEqual([true, true, false, 0]);
  });

  test("releasing more than was taken never goes below zero slots", async () => {
    const s = setup();
    const ws = await s.connect("u");
    await s.close(ws!);
    await s.slots.releaseConnection("u");
    await s.slots.releaseConnection("u");
    expect([await s.acquire("u"), await s.acquire("u"), await s.acquire("u")]).toEqual([true, true, false]);
  });
});
