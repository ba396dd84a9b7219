/**
 * Agent streams (PROTOCOL §8) across two real nodes on the real Redis: a stream started and
 * appended through node A (and B), joined late and resumed on node B, whose first join reads the
 * open stream from Redis; a node that stopped watching the channel and joins again rebuilds it.
 */
import { afterAll, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { signToken } from "../src/auth/tokens.ts";
import { connectWelcomed, type TestClient } from "./helpers/client.ts";
import { spawnCourier, type CourierProcess } from "./helpers/process.ts";
import { JWT_SECRET } from "./helpers/server.ts";
import { rebuiltText, streamApi } from "./helpers/streams.ts";
import { describeRedis } from "./redis-env.ts";

const children: CourierProcess[] = [];
const clients: TestClient[] = [];
afterAll(() => {
  for (const c of clients) c.close();
  for (const c of children) c.kill("SIGKILL");
});

const run = randomUUID().slice(0, 8);

describeRedis("agent streams in cluster mode", (redisUrl) => {
  test("appends on node A; a late join and a resume on node B get the text so far, then live appends", async () => {
    const a = await spawnCourier({ COURIER_REDIS_URL: redisUrl, COURIER_NODE_ID: `sa-${run}` });
    children.push(a);
    const b = await spawnCourier({ COURIER_REDIS_URL: redisUrl, COURIER_NODE_ID: `sb-${run}` });
    children.push(b);
    const user = `su-${run}`;
    const channel = `user:${user}`;
    const token = await signToken(JWT_SECRET, { sub: user }, 600);
    const join = async (node: CourierProcess, since?: { offset: number; epoch: string }) => {
      const c = await connectWelcomed(`${node.ws}?token=${token}`);
      clients.push(c);
      const subscribed = await c.request({ type: "subscribe", channel, ...(since ? { since } : {}) });
      return Object.assign(c, { subscribed });
    };
    const onA = await join(a);
    const viaA = streamApi(a.http);
    const viaB = streamApi(b.http);
    const { stream, epoch } = await viaA.start({ channel, text: "Clusters " });
    await viaA.append(channel, stream, ["keep ", "one "]);
    // A stream started on A takes appends through B: its state is in Redis records.
    await viaB.append(channel, stream, "text ");
    await onA.next((f) => f.offset === 4);

    // B has never watched the channel: its first join reads the open stream from Redis.
    const late = await join(b);
    const snapshot = await late.next((f) => f.event === "stream.snapshot");
    expect(snapshot).toMatchObject({ stream, offset: 4, text: "Clusters keep one text ", status: "streaming" });
    const resumed = await join(b, { offset: 2, epoch });
    expect(resumed.subscribed).toMatchObject({ recovered: true });
    expect(await resumed.next((f) => f.event === "stream.append")).toMatchObject({ offset: 4, text: "one text " });

    await viaA.append(channel, stream, ["per ", "answer"]);
    for (const c of [late, resumed, onA]) await c.next((f) => f.offset === 6);
    expect(rebuiltText(late.frames, stream)).toBe("Clusters keep one text per answer");
    expect(rebuiltText(onA.frames, stream)).toBe("Clusters keep one text per answer");
    expect(resumed.frames.filter((f) => f.type === "event").map((f) => [f.event, f.offset, f.text])).toEqual([
      ["stream.append", 4, "one text "],
      ["stream.append", 6, "per answer"],
    ]);

    // B's subscribers leave (B stops watching); appends go on; B's next join rebuilds the stream.
    late.close();
    resumed.close();
    await Promise.all([late.closed, resumed.closed]);
    await viaA.append(channel, stream, "!");
    const again = await join(b);
    expect(await again.next((f) => f.event === "stream.snapshot")).toMatchObject({ offset: 7, text: "Clusters keep one text per answer!" });
    await viaB.end(channel, stream, "complete");
    expect(await onA.next((f) => f.event === "stream.end")).toMatchObject({ stream, offset: 8, status: "complete" });
    expect(await again.next((f) => f.event === "stream.end")).toMatchObject({ offset: 8 });
  }, 60_000);
});
