/**
 * The control bus of a cluster: a Redis pub/sub channel every node listens to (`<prefix>{ctl}`),
 * and one reply channel per node (`<prefix>{ctl}:r:<member>`).
 *
 * A broadcast runs the command on this node directly and PUBLISHes it once. PUBLISH answers how
 * many subscribers received it: that is how many answers to wait for, so the wait ends as soon as
 * every node has answered, and at `waitMs` at the latest (a node that got the command but did not
 * answer in time is counted as `missing`; it still acts on it). This node hears its own message
 * too (it counts as answered, it is not run twice). The bus has its own subscriber connection,
 * resubscribed on every connect (BUN-NOTES: Bun's subscriber receives nothing after a reconnect
 * until it unsubscribes and subscribes again).
 */
import { randomUUID } from "node:crypto";
import { CLIENT_OPTIONS, connectWithin, keepConnected, RedisClient, resubscribe as resubscribeTo, type LogFn } from "./redis-client.ts";
import type { RedisWiring } from "./presence-redis.ts";
import { redisKeys } from "./redis-keys.ts";
import type { ControlBus, ControlOutcome } from "./types.ts";

/** `member` names this node's reply channel. */
export interface RedisControlOptions extends RedisWiring {
  url: string;
  log: LogFn;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
  retryMs: number;
}

interface Pending {
  replies: unknown[];
  /** This node's own message came back (it was among PUBLISH's receivers). */
  heard: boolean;
  /** PUBLISH's receiver count; -1 until it answers. */
  expected: number;
  done: () => void;
}

/** The Redis control bus with its lifecycle. */
export interface RedisControlBus extends ControlBus {
  /** Connects and subscribes (bounded by `connectTimeoutMs`; carries on reconnecting if Redis is down). */
  start(): Promise<void>;
  close(): void;
}

/**
 * Creates the cluster control bus.
 *
 * @example
 * const bus = createRedisControlBus({ url, prefix: "courier:", member, client: () => cmd, run, log, commandTimeoutMs: 1000, connectTimeoutMs: 2000, retryMs: 1000 });
 * await bus.start();
 * bus.serve((command) => ({ count: 0 }));
 * const { replies, missing } = await bus.broadcast({ kind: "disconnect", user: "alice" }, 1000);
 */
export function createRedisControlBus(o: RedisControlOptions): RedisControlBus {
  const keys = redisKeys(o.prefix);
  const requests = keys.control;
  const replyTo = keys.controlReply;
  const mine = replyTo(o.member);
  const pending = new Map<string, Pending>();
  let handler: ((command: unknown) => unknown) | null = null;
  let sub: RedisClient | null = null;
  let stop: (() => void) | null = null;
  let subscribed: Promise<void> = Promise.resolve();
  let closed = false;

  const settle = (p: Pending) => {
    if (p.expected >= 0 && p.replies.length + (p.heard ? 1 : 0) >= p.expected) p.done();
  };

  function onMessage(message: string, channel: string): void {
    let parsed: { id?: unknown; from?: unknown; command?: unknown; reply?: unknown };
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    const id = String(parsed.id);
    if (channel === mine) {
      const p = pending.get(id);
      if (!p) return;
      p.replies.push(parsed.reply);
      return settle(p);
    }
    if (parsed.from === o.member) {
      const p = pending.get(id);
      if (!p) return;
      p.heard = true;
      return settle(p);
    }
    if (!handler || typeof parsed.from !== "string") return;
    void answer(id, parsed.from, parsed.command);
  }

  async function answer(id: string, from: string, command: unknown): Promise<void> {
    try {
      const reply = await handler!(command);
      await o.run(o.client().send("PUBLISH", [replyTo(from), JSON.stringify({ id, reply })]), "control reply");
    } catch (error) {
      // The asking node counts this node as missing; the command's local part may have run.
      o.log("warn", "control command not answered", { error: (error as Error)?.message });
    }
  }

  /** Unsubscribe, then subscribe: serialized, so two connects never subscribe twice. */
  function resubscribe(): Promise<void> {
    subscribed = subscribed.then(async () => {
      if (closed || !sub) return;
      try {
        await resubscribeTo(sub, [requests, mine], onMessage, { timeoutMs: o.commandTimeoutMs, what: "control" });
      } catch (error) {
        o.log("warn", "control channel subscribe failed; retried on the next connect", { error: (error as Error)?.message });
      }
    });
    return subscribed;
  }

  return {
    async start() {
      const client = (sub = new RedisClient(o.url, CLIENT_OPTIONS));
      stop = keepConnected(client, { name: "control", clientName: `courier:${o.member}:ctl`, retryMs: o.retryMs, log: o.log, onConnect: () => void resubscribe() });
      if (await connectWithin(client, o.connectTimeoutMs)) await resubscribe();
    },

    serve(h) {
      handler = h;
    },

    async broadcast(command, waitMs): Promise<ControlOutcome> {
      const id = randomUUID();
      const { promise: finished, resolve } = Promise.withResolvers<void>();
      const p: Pending = { replies: [], heard: false, expected: -1, done: resolve };
      pending.set(id, p);
      const local = Promise.resolve().then(() => (handler ? handler(command) : undefined));
      const timer = setTimeout(resolve, waitMs);
      try {
        const receivers = await o.run(o.client().send("PUBLISH", [requests, JSON.stringify({ id, from: o.member, command })]), "control publish");
        p.expected = Number(receivers);
        settle(p);
        await finished;
        const own = await local;
        const answered = p.replies.length + (p.heard ? 1 : 0);
        return { replies: handler ? [own, ...p.replies] : [...p.replies], missing: Math.max(0, p.expected - answered) };
      } catch (error) {
        await local.catch(() => {});
        throw error;
      } finally {
        clearTimeout(timer);
        pending.delete(id);
      }
    },

    close() {
      closed = true;
      stop?.();
      for (const p of pending.values()) p.done();
      try {
        sub?.close();
      } catch {
        // Already closed.
      }
    },
  };
}
