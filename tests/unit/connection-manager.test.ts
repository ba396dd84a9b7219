/**
 * The manager's per-user entry, which holds a user's only connection as itself and a Set from the
 * second: `ofUser` and `users` read the same either way. Through the real server:
 * tests/control.test.ts (`/v1/disconnect`, `/v1/unsubscribe`).
 */
import { describe, expect, test } from "bun:test";
import type { ServerWebSocket } from "bun";
import { newConnData, type ConnData } from "../../src/connection/conn-data.ts";
import { ConnectionManager } from "../../src/connection/manager.ts";

type WS = ServerWebSocket<ConnData>;

let sessions = 0;

/** A socket of `user`: the manager reads nothing but `data` when adding and removing. */
function socket(user: string, sessionId = `s${++sessions}`): WS {
  const principal = { user, tier: "starter" as const, channels: new Set<string>(), exp: 0, tierFromToken: false };
  return { data: newConnData(principal, sessionId, null, 0, 10) } as unknown as WS;
}

describe("ConnectionManager per-user connections", () => {
  test("a user with no connection has none", () => {
    const manager = new ConnectionManager();
    expect({ users: manager.users, of: manager.ofUser("u1") }).toEqual({ users: 0, of: [] });
  });

  test("one, two and three connections of a user are listed in the order they opened", () => {
    const manager = new ConnectionManager();
    const [a, b, c] = [socket("u1"), socket("u1"), socket("u1")];
    manager.add(a);
    expect(manager.ofUser("u1")).toEqual([a]);
    manager.add(b);
    expect(manager.ofUser("u1")).toEqual([a, b]);
    manager.add(c);
    expect({ users: manager.users, of: manager.ofUser("u1") }).toEqual({ users: 1, of: [a, b, c] });
  });

  test("removing connections one by one leaves the others, then forgets the user", () => {
    const manager = new ConnectionManager();
    const [a, b, c] = [socket("u1"), socket("u1"), socket("u1")];
    for (const ws of [a, b, c]) manager.add(ws);
    manager.remove(b);
    expect(manager.ofUser("u1")).toEqual([a, c]);
    manager.remove(a);
    expect(manager.ofUser("u1")).toEqual([c]);
    manager.add(a);
    expect(manager.ofUser("u1")).toEqual([c, a]);
    manager.remove(a);
    manager.remove(c);
    expect({ users: manager.users, size: manager.size, of: manager.ofUser("u1") }).toEqual({ users: 0, size: 0, of: [] });
  });

  test("users are kept apart, and a socket added twice is listed once", () => {
    const manager = new ConnectionManager();
    const [a, b] = [socket("u1"), socket("u2")];
    manager.add(a);
    manager.add(a);
    manager.add(b);
    expect({ users: manager.users, u1: manager.ofUser("u1"), u2: manager.ofUser("u2") }).toEqual({ users: 2, u1: [a], u2: [b] });
  });

  test("the list is a snapshot: removing while iterating it reaches every connection", () => {
    const manager = new ConnectionManager();
    const [a, b] = [socket("u1"), socket("u1")];
    manager.add(a);
    manager.add(b);
    const seen = [];
    for (const ws of manager.ofUser("u1")) {
      seen.push(ws);
      manager.remove(ws);
    }
    expect({ seen, left: manager.ofUser("u1") }).toEqual({ seen: [a, b], left: [] });
  });

  test("a session is found among its own user's connections only, whether the user has one or several", () => {
    const manager = new ConnectionManager();
    const [a, b, c] = [socket("u1", "sa"), socket("u1", "sb"), socket("u2", "sc")];
    manager.add(a);
    manager.add(c);
    const one = { mine: manager.session("sa", "u1"), theirs: manager.session("sa", "u2"), unknown: manager.session("sx", "u1") };
    manager.add(b);
    const two = { a: manager.session("sa", "u1"), b: manager.session("sb", "u1"), theirs: manager.session("sb", "u2"), c: manager.session("sc", "u2") };
    manager.remove(a);
    expect({ one, two, gone: manager.session("sa", "u1") }).toEqual({
      one: { mine: a, theirs: undefined, unknown: undefined },
      two: { a, b, theirs: undefined, c },
      gone: undefined,
    });
  });

  test("while a takeover's old connection has not closed, the session is the one opened last", () => {
    const manager = new ConnectionManager();
    const [old, fresh] = [socket("u1", "s"), socket("u1", "s")];
    manager.add(old);
    manager.add(fresh);
    // Compared by identity: the two sockets' data are equal.
    const during = manager.session("s", "u1") === fresh;
    manager.remove(old);
    expect({ during, after: manager.session("s", "u1") === fresh }).toEqual({ during: true, after: true });
  });
});

describe("ConnectionManager passes over every connection", () => {
  /** A socket whose close removes it from `manager` at once, as Bun's close handler can. */
  function closing(manager: ConnectionManager, user: string, buffered: number) {
    const ws = Object.assign(socket(user), {
      closes: 0,
      getBufferedAmount: () => buffered,
      close() {
        ws.closes++;
        manager.remove(ws);
      },
    });
    return ws;
  }

  test("every connection of every user is listed once, and counted in size", () => {
    const manager = new ConnectionManager();
    const [a, b, c, d] = [socket("u1"), socket("u2"), socket("u1"), socket("u3")];
    for (const ws of [a, b, c, d, c]) manager.add(ws);
    manager.reserve();
    const listed = [...manager.connections()];
    expect({ size: manager.size, listed: listed.length, all: [a, b, c, d].every((ws) => listed.includes(ws)) }).toEqual({ size: 5, listed: 4, all: true });
  });

  test("connections closed while a pass runs leave every other one visited once", () => {
    const manager = new ConnectionManager();
    const slow = [closing(manager, "u1", 1e9), closing(manager, "u1", 1e9), closing(manager, "u2", 1e9), closing(manager, "u1", 1e9)];
    const fine = [closing(manager, "u1", 0), closing(manager, "u3", 0)];
    for (const ws of [slow[0]!, fine[0]!, slow[1]!, slow[2]!, fine[1]!, slow[3]!]) manager.add(ws);
    const closed: string[] = [];
    manager.sweepSlow(1 << 20, { oldestUnacked: () => null, onClose: (_code, data) => void closed.push(data.sessionId) });
    expect({ closes: [...slow, ...fine].map((ws) => ws.closes), closed: closed.length, size: manager.size, left: [...manager.connections()] }).toEqual({
      closes: [1, 1, 1, 1, 0, 0],
      closed: 4,
      size: 2,
      left: fine,
    });
  });
});
