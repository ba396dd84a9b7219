/**
 * The control API and session takeover across two nodes on the real Redis: two real servers in
 * this process, each with its own Redis engine, sharing one key prefix that no other test uses.
 * `/v1/disconnect` closes 4403 on both nodes and counts both; `/v1/unsubscribe` reaches both;
 * `/v1/presence` counts across nodes, and after a node stops; a session resumed on node B closes
 * its connection on node A with 1000, carrying A's latest acknowledgements and its connection slot.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { CloseCode } from "../src/protocol/codes.ts";
import { connectWelcomed, upgradeStatus } from "./helpers/client.ts";
import { startRedisNode } from "./helpers/redis-node.ts";
import { API_KEY, type TestServer } from "./helpers/server.ts";
import { deleteKeys, describeRedis } from "./redis-env.ts";

const PREFIX = `courier-ctl-${crypto.randomUUID().slice(0, 8)}`;
const auth = { authorization: `Bearer ${API_KEY}` };

describeRedis("control API across two nodes", (redisUrl) => {
  let a: TestServer;
  let b: TestServer;

  const node = (nodeId: string) => startRedisNode(redisUrl, nodeId, `${PREFIX}:`);
  const open = async (n: TestServer, user: string, session = "") => connectWelcomed(`${n.ws}?token=${await n.token(user)}${session && `&session=${session}`}`);
  const post = async (n: TestServer, path: string, body: unknown) => {
    const res = await fetch(`${n.http}${path}`, { method: "POST", headers: auth, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    return res.json();
  };
  const presence = async (n: TestServer, channel: string) => (await fetch(`${n.http}/v1/presence?channel=${channel}`, { headers: auth })).json();

  beforeAll(async () => {
    a = await node("ctl-a");
    b = await node("ctl-b");
  });

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await deleteKeys(redisUrl, `${PREFIX}:`);
  });

  test("disconnect through node A closes the user's connections on both nodes with 4403 and counts all of them", async () => {
    const onA = [await open(a, "x-alice"), await open(a, "x-alice")];
    const onB = await open(b, "x-alice");
    const bystander = await open(b, "x-bob");
    expect(await post(a, "/v1/disconnect", { user: "x-alice", reason: "bye" })).toEqual({ closed: 3 });
    for (const c of [...onA, onB]) expect(await c.closed).toEqual({ code: CloseCode.Disconnected, reason: "bye" });
    expect(await bystander.request({ type: "ping" })).toMatchObject({ type: "pong" });
    expect(await post(b, "/v1/disconnect", { user: "x-nobody" })).toEqual({ closed: 0 });
    bystander.close();
  });

  test("unsubscribe through node B reaches the user's connections on both nodes", async () => {
    const channel = "public:x-news";
    const onA = await open(a, "x-carol");
    const onB = await open(b, "x-carol");
    for (const c of [onA, onB]) await c.request({ type: "subscribe", channel });
    expect(await post(b, "/v1/unsubscribe", { user: "x-carol", channel })).toEqual({ unsubscribed: 2 });
    for (const c of [onA, onB]) expect(await c.next((f) => f.type === "unsubscribed")).toEqual({ type: "unsubscribed", channel, reason: "server" });
    onA.close();
    onB.close();
  });

  test("presence counts across nodes, read from either; a stopped node's subscribers stop counting", async () => {
    const channel = "public:x-room";
    const c = await node("ctl-c");
    const onA = await open(a, "x-dave");
    const onC = [await open(c, "x-dave"), await open(c, "x-erin")];
    for (const client of [onA, ...onC]) await client.request({ type: "subscribe", channel });
    const all = { channel, subscribers: 3, users: [{ user: "x-dave", connections: 2 }, { user: "x-erin", connections: 1 }] };
    expect(await presence(a, channel)).toEqual(all);
    expect(await presence(b, channel)).toEqual(all);
    await c.stop();
    expect(await presence(a, channel)).toEqual({ channel, subscribers: 1, users: [{ user: "x-dave", connections: 1 }] });
    onA.close();
  });

  test("a session resumed on node B closes its connection on node A with 1000 and replays after A's last ack", async () => {
    const channel = "user:x-frank";
    const first = await open(a, "x-frank");
    await first.request({ type: "subscribe", channel });
    for (let i = 1; i <= 3; i++) await a.publish({ channel, event: "step", data: i });
    await first.collect((f) => f.type === "event", 3);
    first.send({ type: "ack", channel, offset: 2 });
    // The ack is processed before this answer: frames of one connection are handled in order.
    await first.request({ type: "ping" });
    const second = await open(b, "x-frank", first.welcome.session);
    expect(second.welcome).toMatchObject({ resumed: true, session: first.welcome.session, node: "ctl-b" });
    expect(await first.closed).toMatchObject({ code: CloseCode.Normal });
    expect(await second.next((f) => f.type === "subscribed")).toMatchObject({ channel, recovered: true });
    const replay = await second.next((f) => f.type === "event");
    expect(replay).toMatchObject({ channel, offset: 3, data: 3 });
    second.close();
  });

  test("a takeover across nodes hands the connection slot over: a user at the limit can resume elsewhere", async () => {
    const user = "x-grace";
    const onA = [await open(a, user), await open(a, user), await open(a, user)];
    expect((await upgradeStatus(`${b.ws}?token=${await b.token(user)}`)).status).toBe(429);
    const resumed = await open(b, user, onA[0]!.welcome.session);
    expect(resumed.welcome.resumed).toBe(true);
    expect((await onA[0]!.closed).code).toBe(CloseCode.Normal);
    expect(await onA[1]!.request({ type: "ping" })).toMatchObject({ type: "pong" });
    for (const c of [resumed, onA[1]!, onA[2]!]) c.close();
  });

  test("another user's session id takes nothing over on another node", async () => {
    const owner = await open(a, "x-henry");
    const stranger = await open(b, "x-ivan", owner.welcome.session);
    expect(stranger.welcome.resumed).toBe(false);
    expect(await owner.request({ type: "ping" })).toMatchObject({ type: "pong" });
    owner.close();
    stranger.close();
  });
});
