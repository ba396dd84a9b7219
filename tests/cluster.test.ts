/**
 * Cluster mode (PROTOCOL.md §7) with real node processes on the real Redis: cross-node fan-out,
 * the cluster-wide per-user limit, failover after `kill -9` with resume by `since`, a killed
 * subscriber connection, and Redis going away and coming back.
 */
import { afterAll, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { signToken } from "../src/auth/tokens.ts";
import { connectWelcomed, upgradeStatus, type TestClient } from "./helpers/client.ts";
import { freePort, spawnCourier, type CourierProcess } from "./helpers/process.ts";
import { API_KEY, JWT_SECRET } from "./helpers/server.ts";
import { describeRedis } from "./redis-env.ts";

const children: CourierProcess[] = [];
const redisServers: Bun.Subprocess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  for (const r of redisServers) r.kill(9);
});

const run = randomUUID().slice(0, 8);
const token = (user: string) => signToken(JWT_SECRET, { sub: user }, 600);
const publish = (node: CourierProcess, channel: string, event: string, data: unknown = null) =>
  fetch(`${node.http}/v1/publish`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ channel, event, data }) });

async function node(redisUrl: string, id: string): Promise<CourierProcess> {
  const child = await spawnCourier({ COURIER_REDIS_URL: redisUrl, COURIER_NODE_ID: id });
  children.push(child);
  return child;
}

describeRedis("cluster mode", (redisUrl) => {
  let a: CourierProcess;
  let b: CourierProcess;

  test("two nodes name themselves in welcome; an event published through B reaches a client on A", async () => {
    a = await node(redisUrl, `a-${run}`);
    b = await node(redisUrl, `b-${run}`);
    const onA = await connectWelcomed(`${a.ws}?token=${await token(`u-${run}`)}`);
    expect(onA.welcome.node).toBe(`a-${run}`);
    const channel = `public:x-${run}`;
    await onA.request({ type: "subscribe", channel });
    for (let i = 0; i < 20; i++) expect((await publish(b, channel, "cross", i)).status).toBe(200);
    const events = await onA.collect((f) => f.type === "event", 20);
    expect(events.map((e) => e.data)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(events.map((e) => e.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    onA.close();
  });

  test("the per-user limit holds across nodes", async () => {
    const url = (n: CourierProcess) => token(`limit-${run}`).then((t) => `${n.ws}?token=${t}`);
    const clients = [await connectWelcomed(await url(a)), await connectWelcomed(await url(a)), await connectWelcomed(await url(b))];
    expect((await upgradeStatus(await url(b))).status).toBe(429);
    expect((await upgradeStatus(await url(a))).status).toBe(429);
    for (const c of clients) c.close();
  });

  test("/ws/stats?scope=cluster lists every node", async () => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const body = await (await fetch(`${a.http}/ws/stats?scope=cluster`, { headers: { authorization: `Bearer ${API_KEY}` } })).json();
      const nodes = body.nodes.map((n: { node: string }) => n.node);
      if (nodes.includes(`a-${run}`) && nodes.includes(`b-${run}`)) break;
      if (Date.now() > deadline) throw new Error(`cluster stats never listed both nodes: ${JSON.stringify(nodes)}`);
      await Bun.sleep(100); // reports arrive on the nodes' own interval; bounded by the deadline
    }
  });

  test("a job created through node A can be joined by its owner on node B", async () => {
    const owner = `owner-${run}`;
    const res = await fetch(`${a.http}/v1/jobs`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ owner }) });
    expect(res.status).toBe(201);
    const { job } = await res.json();
    const onB = await connectWelcomed(`${b.ws}?token=${await token(owner)}`);
    expect(await onB.request({ type: "subscribe", channel: `job:${job}` })).toMatchObject({ type: "subscribed" });
    const stranger = await connectWelcomed(`${b.ws}?token=${await token(`stranger-${run}`)}`);
    expect(await stranger.request({ type: "subscribe", channel: `job:${job}` })).toMatchObject({ type: "error", code: "forbidden" });
    onB.close();
    stranger.close();
  });

  test("a killed subscriber connection loses nothing", async () => {
    const channel = `public:ck-${run}`;
    const c = await connectWelcomed(`${a.ws}?token=${await token(`ck-${run}`)}`);
    await c.request({ type: "subscribe", channel });
    const kill = Bun.spawn(["redis-cli", "-u", redisUrl, "CLIENT", "KILL", "TYPE", "pubsub"], { stdout: "pipe" });
    await kill.exited;
    for (let i = 0; i < 50; i++) expect((await publish(b, channel, "after-kill", i)).status).toBe(200);
    const events = await c.collect((f) => f.type === "event", 50, 15_000);
    expect(events.map((e) => e.offset)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    c.close();
  }, 20_000);

  test("kill -9 node A with 20 clients: they resume on B by since and get everything once, in order", async () => {
    const users = Array.from({ length: 20 }, (_, i) => `fo-${run}-${i}`);
    const tokens = await Promise.all(users.map(token));
    const received = new Map<string, number[]>(users.map((u) => [u, []]));
    const epochs = new Map<string, string>();
    const track = (c: TestClient, user: string) =>
      c.ws.addEventListener("message", (m) => {
        const f = JSON.parse(String(m.data));
        if (f.type === "event") received.get(user)!.push(f.offset);
      });
    const onA = await Promise.all(users.map((_, i) => connectWelcomed(`${a.ws}?token=${tokens[i]}`)));
    await Promise.all(onA.map(async (c, i) => {
      track(c, users[i]!);
      epochs.set(users[i]!, (await c.request({ type: "subscribe", channel: `user:${users[i]}` })).epoch);
    }));
    const accepted = new Map<string, number[]>(users.map((u) => [u, []]));
    const publishRound = async (round: number) => {
      for (const user of users) {
        const res = await publish(b, `user:${user}`, "tool_executing", round);
        expect(res.status).toBe(200);
        accepted.get(user)!.push((await res.json()).offset);
      }
    };
    await publishRound(0);
    await Promise.all(onA.map((c) => c.collect((f) => f.type === "event", 1)));
    a.kill("SIGKILL");
    await Promise.all(onA.map((c) => c.closed));
    await publishRound(1); // published while the clients are away
    const onB = await Promise.all(users.map((_, i) => connectWelcomed(`${b.ws}?token=${tokens[i]}`)));
    await Promise.all(onB.map(async (c, i) => {
      const user = users[i]!;
      track(c, user);
      const answer = await c.request({ type: "subscribe", channel: `user:${user}`, since: { offset: received.get(user)!.at(-1) ?? 0, epoch: epochs.get(user) } });
      expect(answer).toMatchObject({ recovered: true });
    }));
    await publishRound(2);
    await Promise.all(onB.map((c, i) => c.collect((f) => f.type === "event", accepted.get(users[i]!)!.length - 1)));
    for (const user of users) expect(received.get(user)).toEqual(accepted.get(user)!);
    for (const c of onB) c.close();
  }, 30_000);
});

describeRedis("cluster mode with Redis going away", () => {
  test("Redis stopped: publishes 503 and /ready 503, clients stay connected; Redis back: recovery", async () => {
    const port = freePort();
    const startRedis = () => {
      const proc = Bun.spawn(["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdout: "ignore", stderr: "ignore" });
      redisServers.push(proc);
      return proc;
    };
    const waitRedis = async () => {
      for (let i = 0; i < 100; i++) {
        const ping = Bun.spawn(["redis-cli", "-p", String(port), "ping"], { stdout: "pipe", stderr: "ignore" });
        if ((await new Response(ping.stdout).text()).trim() === "PONG") return;
        await Bun.sleep(50); // no event to wait on for a process's port; bounded
      }
      throw new Error("private redis did not start");
    };
    let redis = startRedis();
    await waitRedis();
    const url = `redis://127.0.0.1:${port}`;
    const n = await node(url, `solo-${run}`);
    const channel = `public:outage-${run}`;
    const c = await connectWelcomed(`${n.ws}?token=${await token(`outage-${run}`)}`);
    await c.request({ type: "subscribe", channel });
    expect((await publish(n, channel, "before")).status).toBe(200);
    await c.next((f) => f.event === "before");

    redis.kill(9);
    await redis.exited;
    const down = await publish(n, channel, "during");
    expect(down.status).toBe(503);
    expect(down.headers.get("retry-after")).toBeTruthy();
    expect((await fetch(`${n.http}/ready`)).status).toBe(503);
    expect(c.ws.readyState).toBe(WebSocket.OPEN);

    redis = startRedis();
    await waitRedis();
    const deadline = Date.now() + 20_000;
    for (;;) {
      const res = await publish(n, channel, "after");
      if (res.status === 200) break;
      if (Date.now() > deadline) throw new Error("publishing never recovered");
      await Bun.sleep(200); // the breaker's half-open probe comes on its own clock; bounded
    }
    expect((await fetch(`${n.http}/ready`)).status).toBe(200);
    // The client is still connected and hears live events again. Redis lost its data, so the
    // channel has a new epoch: the client is told before the first event of it (offset 1).
    const before = c.frames.find((f) => f.type === "subscribed")!;
    const changed = await c.next((f) => f.type === "subscribed" && f.reason === "epoch_changed", 10_000);
    expect(changed).toMatchObject({ channel, recovered: false, offset: 0 });
    expect(changed.epoch).not.toBe(before.epoch);
    const after = await c.next((f) => f.event === "after", 10_000);
    expect(after.offset).toBe(1);
    expect(c.frames.indexOf(changed)).toBeLessThan(c.frames.indexOf(after));
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    c.close();
  }, 60_000);
});
