/**
 * What a chaos scenario does to Courier nodes: publish an event with a unique `data.id` (recording
 * every 2xx in the ledger), read a channel's whole history, wait for a log line, and clean up.
 */
import { afterAll } from "bun:test";
import { signToken } from "../../src/auth/tokens.ts";
import { connectWelcomed, type TestClient } from "../helpers/client.ts";
import { spawnCourier, type CourierProcess } from "../helpers/process.ts";
import { API_KEY, JWT_SECRET } from "../helpers/server.ts";
import type { HistoryView } from "./publish-ledger.ts";
import { redisProxy, type RedisProxy } from "./redis-proxy.ts";
import { stopAllRedis } from "./redis-server.ts";

/**
 * What one scenario starts, each stopped by an `afterAll` this registers: Courier nodes, clients,
 * proxies and the private Redis servers (`startRedis`).
 */
export function scenarioCleanup() {
  const children: CourierProcess[] = [];
  const clients: TestClient[] = [];
  const proxies: RedisProxy[] = [];
  afterAll(async () => {
    for (const c of clients) c.close();
    for (const c of children) c.kill("SIGKILL");
    for (const p of proxies) p.down();
    await stopAllRedis();
  });
  return {
    children,
    clients,
    /** Starts a Courier node in cluster mode on `redisUrl` (killed in `afterAll`). */
    async node(redisUrl: string, nodeId: string, env: Record<string, string> = {}) {
      const child = await spawnCourier({ COURIER_REDIS_URL: redisUrl, COURIER_NODE_ID: nodeId, ...env });
      children.push(child);
      return child;
    },
    /** A started proxy to `target` (taken down in `afterAll`). */
    proxy(target: string) {
      const proxy = redisProxy(new URL(target));
      proxies.push(proxy);
      proxy.up();
      return proxy;
    },
    /** Connects `user` to `node` (closed in `afterAll`) and subscribes to `channel`. */
    async subscriber(node: { ws: string }, user: string, channel: string, since?: { offset: number; epoch: string }) {
      const client = await connectWelcomed(`${node.ws}?token=${await userToken(user)}`);
      clients.push(client);
      const subscribed = await client.request(since ? { type: "subscribe", channel, since } : { type: "subscribe", channel });
      return { client, subscribed };
    },
  };
}

/** Publishes `ev-<from>` … `ev-<from + count - 1>` one after another; each must answer 200. */
export async function publishMany(http: string, channel: string, from: number, count: number, ledger: AckSink): Promise<void> {
  for (let i = from; i < from + count; i++) {
    const answer = await publishEvent(http, channel, `ev-${i}`, { ledger });
    if (answer.status !== 200) throw new Error(`publish of ev-${i} answered ${answer.status} ${JSON.stringify(answer.body)}`);
  }
}

export const userToken = (user: string) => signToken(JWT_SECRET, { sub: user }, 600);

/** Where 2xx publishes are recorded (`createLedger`). */
export interface AckSink {
  ack(channel: string, outcome: { epoch: string; offset: number }, id: string): void;
}

/** The answer of one publish: status, body and `Retry-After`. */
export interface PublishAnswer {
  status: number;
  body: { epoch?: string; offset?: number; error?: string; message?: string; duplicate?: boolean };
  retryAfter: string | null;
}

/**
 * POSTs one critical event `{id}` to `channel`; `key` sets the Idempotency-Key.
 *
 * @example
 * const answer = await publishEvent(node.http, "public:x", "e1", { ledger });
 */
export async function publishEvent(
  http: string,
  channel: string,
  id: string,
  o: { key?: string; ledger?: AckSink } = {},
): Promise<PublishAnswer> {
  const headers: Record<string, string> = { authorization: `Bearer ${API_KEY}` };
  if (o.key) headers["idempotency-key"] = o.key;
  const res = await fetch(`${http}/v1/publish`, { method: "POST", headers, body: JSON.stringify({ channel, event: "chaos", critical: true, data: { id } }) });
  const body = (await res.json()) as PublishAnswer["body"];
  if (res.ok) o.ledger?.ack(channel, body as { epoch: string; offset: number }, id);
  return { status: res.status, body, retryAfter: res.headers.get("retry-after") };
}

/** Every retained event of `channel` (up to `limit`), read as `user`. */
export async function readHistory(http: string, channel: string, user = "chaos-reader", limit = 10_000): Promise<HistoryView & { offset: number }> {
  const res = await fetch(`${http}/v1/history?channel=${encodeURIComponent(channel)}&since=0&limit=${limit}`, {
    headers: { authorization: `Bearer ${await userToken(user)}` },
  });
  if (!res.ok) throw new Error(`history of ${channel}: ${res.status} ${await res.text()}`);
  return (await res.json()) as HistoryView & { offset: number };
}

/** Resolves once the node's `/ready` answers 200 (after a Redis restart, say); polled every 20 ms, bounded by `timeoutMs`. */
export async function nodeReady(node: { http: string }, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await fetch(`${node.http}/ready`).then((r) => r.status, () => 0)) !== 200) {
    if (Date.now() > deadline) throw new Error(`${node.http} never became ready again`);
    await Bun.sleep(20); // the node's reconnect has no event another process can wait on
  }
}
