/** Sessions (PROTOCOL.md §6): resume lookup, takeover, saving. Store and connections are fakes. */
import { describe, expect, test } from "bun:test";
import type { ServerWebSocket } from "bun";
import type { Principal } from "../../src/auth/tokens.ts";
import { newConnData, type ConnData } from "../../src/connection/conn-data.ts";
import { deleteSub, newSubscription, setSub } from "../../src/connection/subs.ts";
import type { SessionState, SessionStore } from "../../src/engine/types.ts";
import { CloseCode } from "../../src/protocol/codes.ts";
import { Sessions, sessionStateOf, type SessionsOptions } from "../../src/server/sessions.ts";
import { createLogger } from "../../src/telemetry/index.ts";

const SESSION = "0123456789abcdef";

function principal(user: string): Principal {
  return { user, tier: "starter", tierFromToken: false, exp: Number.MAX_SAFE_INTEGER, channels: new Set() } as unknown as Principal;
}

function conn(user: string, sessionId = SESSION) {
  const data = newConnData(principal(user), sessionId, null, 0, 10);
  setSub(data, { ...newSubscription("public:a"), epoch: "e1", from: 2, acked: 5, joinedAt: 1, ready: true });
  setSub(data, newSubscription("public:b"));
  const closes: { code?: number; reason?: string }[] = [];
  const ws = { data, close: (code?: number, reason?: string) => void closes.push({ code, reason }) } as unknown as ServerWebSocket<ConnData>;
  return { ws, data, closes };
}

function setup(
  options: { stored?: Record<string, SessionState>; shared?: boolean; local?: ServerWebSocket<ConnData>; saveFails?: boolean; control?: SessionsOptions["control"] } = {},
) {
  const loads: string[] = [];
  const saves: { id: string; state: SessionState; ttlMs: number }[] = [];
  const resumed: boolean[] = [];
  const logs: string[] = [];
  let logged = Promise.withResolvers<string>();
  const store: SessionStore = {
    sharedAcrossNodes: options.shared ?? false,
    saveSession: async (id, state, ttlMs) => {
      if (options.saveFails) throw new Error("store down");
      saves.push({ id, state, ttlMs });
    },
    loadSession: async (id) => {
      loads.push(id);
      return options.stored?.[id] ?? null;
    },
    deleteSession: async () => {},
  };
  const released: string[] = [];
  const sessions = new Sessions({
    store,
    control: options.control,
    slots: { releaseConnection: async (user) => void released.push(user) },
    manager: { session: (id) => (options.local?.data.sessionId === id ? options.local : undefined) },
    resumeWindowMs: 30_000,
    events: { resumed: (hit) => void resumed.push(hit) },
    log: createLogger({
      level: "debug",
      sink: (line) => {
        logs.push(line);
        logged.resolve(line);
        logged = Promise.withResolvers<string>();
      },
    }),
  });
  return { sessions, loads, saves, resumed, released, nextLog: () => logged.promise };
}

describe("Sessions", () => {
  test("no session asked: a fresh id, nothing looked up, no resume counted", async () => {
    const s = setup();
    const r = await s.sessions.resume(null, "alice");
    expect({ fresh: r.sessionId !== SESSION, state: r.state, takeover: r.takeover, loads: s.loads, resumed: s.resumed }).toEqual({ fresh: true, state: null, takeover: undefined, loads: [], resumed: [] });
  });

  test("a stored session of the same user is a hit", async () => {
    const state: SessionState = { user: "alice", channels: { "public:a": { epoch: "e1", from: 0, acked: 3 } } };
    const s = setup({ stored: { [SESSION]: state } });
    expect(await s.sessions.resume(SESSION, "alice")).toEqual({ sessionId: SESSION, state, takeover: undefined });
    expect(s.resumed).toEqual([true]);
  });

  test("another user's session is a miss exactly like an unknown one: a fresh id, nothing of it revealed", async () => {
    const s = setup({ stored: { [SESSION]: { user: "bob", channels: { "user:bob": { epoch: "e", from: 0, acked: 9 } } } } });
    const other = await s.sessions.resume(SESSION, "alice");
    const unknown = await s.sessions.resume("fedcba9876543210", "alice");
    for (const r of [other, unknown]) expect({ same: r.sessionId === SESSION, state: r.state, takeover: r.takeover }).toEqual({ same: false, state: null, takeover: undefined });
    expect(s.resumed).toEqual([false, false]);
  });

  test("a malformed session id is a miss without asking the store", async () => {
    const s = setup();
    const r = await s.sessions.resume("short", "alice");
    expect({ loads: s.loads, resumed: s.resumed, state: r.state }).toEqual({ loads: [], resumed: [false], state: null });
  });

  test("a session still open here is taken over with its fresher state; another user's open one is not", async () => {
    const mine = conn("alice");
    const s = setup({ local: mine.ws, stored: { [SESSION]: { user: "alice", channels: {} } } });
    const r = await s.sessions.resume(SESSION, "alice");
    expect(r).toEqual({ sessionId: SESSION, state: sessionStateOf(mine.data), takeover: mine.ws });
    expect(r.state).toEqual({ user: "alice", channels: { "public:a": { epoch: "e1", from: 2, acked: 5 } } });
    s.sessions.takeOver(mine.ws);
    expect({ transferred: mine.data.slotTransferred, closes: mine.closes }).toEqual({ transferred: true, closes: [{ code: CloseCode.Normal, reason: "session taken over" }] });

    const theirs = conn("bob");
    const t = setup({ local: theirs.ws });
    expect((await t.sessions.resume(SESSION, "alice")).takeover).toBeUndefined();
  });

  test("closing saves the session for the resume window, unless taken over or empty", async () => {
    const s = setup();
    const open = conn("alice");
    s.sessions.closed(open.data);
    const taken = conn("alice");
    taken.data.slotTransferred = true;
    s.sessions.closed(taken.data);
    const empty = conn("alice");
    deleteSub(empty.data, "public:a");
    deleteSub(empty.data, "public:b");
    s.sessions.closed(empty.data);
    await Promise.resolve();
    expect(s.saves).toEqual([{ id: SESSION, state: sessionStateOf(open.data), ttlMs: 30_000 }]);
  });

  test("a failed save on close is logged, not thrown", async () => {
    const s = setup({ saveFails: true });
    const line = s.nextLog();
    s.sessions.closed(conn("alice").data);
    expect(JSON.parse(await line)).toMatchObject({ level: "warn", msg: "session not saved", error: "store down" });
  });

  test("dirty state is saved as it changes only where another node may resume it", async () => {
    expect(setup({ shared: false }).sessions.onDirty).toBeUndefined();
    const s = setup({ shared: true });
    const c = conn("alice");
    s.sessions.onDirty!(c.data);
    await Promise.resolve();
    expect(s.saves).toEqual([{ id: SESSION, state: sessionStateOf(c.data), ttlMs: 30_000 }]);
  });
});

describe("Sessions across nodes", () => {
  const live: SessionState = { user: "alice", channels: { "public:a": { epoch: "e1", from: 2, acked: 7 } } };

  test("a session not open here is asked of the other nodes; the live state they answer beats the stored one", async () => {
    const asked: unknown[] = [];
    const stored: SessionState = { user: "alice", channels: { "public:a": { epoch: "e1", from: 2, acked: 3 } } };
    const s = setup({ shared: true, stored: { [SESSION]: stored }, control: { broadcast: async (command) => (asked.push(command), { replies: [{ count: 0 }, { count: 1, state: live }], missing: 0 }) } });
    expect(await s.sessions.resume(SESSION, "alice")).toEqual({ sessionId: SESSION, state: live, takeover: undefined });
    expect(asked).toEqual([{ kind: "takeover", session: SESSION, user: "alice" }]);
  });

  test("a session not saved yet but open on another node is a hit; another user's answer is ignored", async () => {
    const s = setup({ shared: true, control: { broadcast: async () => ({ replies: [{ count: 1, state: live }], missing: 0 }) } });
    expect((await s.sessions.resume(SESSION, "alice")).state).toEqual(live);
    expect((await s.sessions.resume(SESSION, "mallory")).state).toBeNull();
  });

  test("an unreachable cluster falls back to the stored state and logs; nothing is asked where only this node resumes", async () => {
    const stored: SessionState = { user: "alice", channels: {} };
    let asked = 0;
    const down = setup({ shared: true, stored: { [SESSION]: stored }, control: { broadcast: async () => Promise.reject(new Error("redis down")) } });
    const logged = down.nextLog();
    expect((await down.sessions.resume(SESSION, "alice")).state).toEqual(stored);
    expect(await logged).toContain("session takeover not sent to other nodes");
    const single = setup({ shared: false, stored: { [SESSION]: stored }, control: { broadcast: async () => (asked++, { replies: [], missing: 0 }) } });
    await single.sessions.resume(SESSION, "alice");
    expect(asked).toBe(0);
  });

  test("handOver closes this node's connection with 1000, frees its slot, and answers its state; other users get nothing", async () => {
    const { ws, data, closes } = conn("alice");
    const s = setup({ shared: true, local: ws });
    expect(await s.sessions.handOver(SESSION, "mallory")).toEqual({ count: 0 });
    expect(closes).toEqual([]);
    expect(await s.sessions.handOver(SESSION, "alice")).toEqual({ count: 1, state: sessionStateOf(data) });
    expect(closes).toEqual([{ code: CloseCode.Normal, reason: "session taken over" }]);
    expect(s.released).toEqual(["alice"]);
    // Taken over: closing saves nothing (the new node owns the session), and a second ask is a no-op.
    s.sessions.closed(data);
    expect(s.saves).toEqual([]);
    expect(await s.sessions.handOver(SESSION, "alice")).toEqual({ count: 0 });
  });
});
