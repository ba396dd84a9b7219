/**
 * An agent stream under a crash (PROTOCOL §8): appends are `kill -9`ed mid-stream and the server
 * restarted on the same data dir. Every append answered 200 is in the text a resumer rebuilds, in
 * order — a new subscriber's snapshot, a live subscriber's resume by `since`, and `/v1/history`
 * all agree; only the one append in flight at the kill may be there or not.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signToken } from "../src/auth/tokens.ts";
import { connectWelcomed } from "./helpers/client.ts";
import { spawnCourier, type CourierProcess } from "./helpers/process.ts";
import { JWT_SECRET } from "./helpers/server.ts";
import { rebuiltText, streamApi } from "./helpers/streams.ts";

const dataDir = mkdtempSync(join(tmpdir(), "courier-stream-crash-"));
const children: CourierProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
});

const KILL_AFTER = 150;

test("kill -9 mid-stream: the resumed text is exactly the 200'd appends (plus at most the one in flight)", async () => {
  const first = await spawnCourier({ COURIER_DATA_DIR: dataDir });
  children.push(first);
  const token = await signToken(JWT_SECRET, { sub: "crash" }, 600);
  const live = await connectWelcomed(`${first.ws}?token=${token}`);
  const subscribed = await live.request({ type: "subscribe", channel: "user:crash" });
  const api = streamApi(first.http);
  const { stream } = await api.start({ channel: "user:crash", text: "<" });

  // One producer, appends in order (as @courier/server sends them), some as `texts` batches.
  let acknowledged = "<";
  let inFlight = "";
  for (let i = 0; ; i++) {
    const texts = i % 3 === 0 ? [`[${i}a]`, `[${i}b]`] : [`[${i}]`];
    inFlight = texts.join("");
    if (i === KILL_AFTER) {
      const pending = api.append("user:crash", stream, texts).then(
        () => "answered",
        () => "lost",
      );
      first.kill("SIGKILL");
      if ((await pending) === "answered") acknowledged += inFlight;
      break;
    }
    await api.append("user:crash", stream, texts);
    acknowledged += inFlight;
  }
  await first.exited;
  const liveText = rebuiltText(live.frames, stream);
  const lastSeen = Math.max(...live.frames.filter((f) => f.type === "event").map((f) => f.offset));

  const second = await spawnCourier({ COURIER_DATA_DIR: dataDir }, first.port);
  children.push(second);
  const possible = [acknowledged, acknowledged.endsWith(inFlight) ? acknowledged : acknowledged + inFlight];

  // A new subscriber: one snapshot holding the text.
  const fresh = await connectWelcomed(`${second.ws}?token=${token}`);
  await fresh.request({ type: "subscribe", channel: "user:crash" });
  const snapshot = await fresh.next((f) => f.event === "stream.snapshot");
  expect(possible).toContain(snapshot.text);
  await fresh.request({ type: "ping" });
  expect(fresh.frames.filter((f) => f.type === "event")).toHaveLength(1);

  // The live subscriber resumes by `since`: what it had plus one append is the same text.
  const resumed = await connectWelcomed(`${second.ws}?token=${token}`);
  const sub = await resumed.request({ type: "subscribe", channel: "user:crash", since: { offset: lastSeen, epoch: subscribed.epoch } });
  expect(sub).toMatchObject({ recovered: true });
  // The replay follows `subscribed` in later messages: a ping's pong comes after all of it.
  await resumed.request({ type: "ping" });
  const tail = resumed.frames.filter((f) => f.type === "event");
  if (tail.length > 0) expect(tail.map((f) => f.event)).toEqual(["stream.append"]);
  expect(liveText + (tail[0]?.text ?? "")).toBe(snapshot.text);

  // History agrees, and the stream can still be ended.
  const history = await (await fetch(`${second.http}/v1/history?channel=user:crash&limit=1000`, { headers: { authorization: `Bearer ${token}` } })).json();
  expect(history.events.map((f: { text: string }) => f.text)).toEqual([snapshot.text]);
  expect(await streamApi(second.http).end("user:crash", stream, "complete")).toMatchObject({ offset: expect.any(Number) });
  fresh.close();
  resumed.close();
  live.close();
}, 60_000);
