/**
 * Resume after kill -9 (Courier only). `clients` users each on their own `user:<sub>` channel:
 * `liveEvents` critical events are delivered live, then the clients go away, `missedEvents` more are
 * published (each answered 200, so each must survive a crash), the harness kills the server with
 * SIGKILL and restarts it on the same data dir, and every client reconnects with `since`. Measures
 * the time from the port answering again until every client holds every acknowledged event, and
 * counts lost and duplicated ones.
 */
import { connect, tokensFor, type BenchClient } from "../lib/clients.ts";
import { Publisher, payload, type PublishItem } from "../lib/publisher.ts";
import { nowMs, readLines } from "../lib/proc.ts";
import type { TargetInfo } from "../lib/target.ts";
import { closeAll, mark, settle, users, type LoadResult } from "./common.ts";

export interface ResumeParams {
  clients: number;
  liveEvents: number;
  missedEvents: number;
}

interface Follower {
  channel: string;
  token: string;
  epoch: string;
  /** offset → times received, over both connections. */
  received: Map<number, number>;
  expected: number[];
  caughtUpAt: number;
  client?: BenchClient;
}

/** The harness's answer to `KILL`, read from stdin once. */
function harnessAnswer(timeoutMs: number): Promise<string> {
  const { promise, resolve } = Promise.withResolvers<string>();
  const timer = setTimeout(() => resolve("timeout"), timeoutMs);
  void readLines(Bun.stdin.stream(), (line) => {
    clearTimeout(timer);
    resolve(line);
  });
  return promise;
}

async function attach(target: TargetInfo, follower: Follower, since?: { offset: number; epoch: string }) {
  const client = await connect(target, { user: follower.channel.slice("user:".length), token: follower.token });
  client.onEvent = (_seq, _sentAt, _ts, offset) => {
    follower.received.set(offset, (follower.received.get(offset) ?? 0) + 1);
    if (follower.caughtUpAt === 0 && follower.expected.length > 0 && follower.expected.every((o) => follower.received.has(o))) follower.caughtUpAt = nowMs();
  };
  await client.ready;
  const subscribed = await client.subscribe(follower.channel, since);
  follower.epoch = subscribed.epoch;
  follower.client = client;
  return subscribed;
}

async function publishAll(publisher: Publisher, followers: Follower[], perChannel: number): Promise<void> {
  const items: { follower: Follower; item: PublishItem }[] = [];
  for (let k = 0; k < perChannel; k++) {
    for (const follower of followers) items.push({ follower, item: { channel: follower.channel, event: "bench_step", data: payload(k), critical: true } });
  }
  for (let i = 0; i < items.length; i += 100) {
    const chunk = items.slice(i, i + 100);
    const answers = await publisher.batch(chunk.map(({ item }) => item));
    answers.forEach((answer, j) => chunk[j]!.follower.expected.push(answer.offset));
  }
}

export async function resume(target: TargetInfo, params: ResumeParams): Promise<LoadResult> {
  if (target.kind !== "courier") return { skipped: "Courier only" };
  const names = users("resume", params.clients);
  const tokens = await tokensFor(target, names);
  const followers: Follower[] = names.map((name, i) => ({ channel: `user:${name}`, token: tokens[i]!, epoch: "", received: new Map(), expected: [], caughtUpAt: 0 }));
  let next = 0;
  await Promise.all(Array.from({ length: 100 }, async () => {
    while (next < followers.length) await attach(target, followers[next++]!);
  }));

  const publisher = new Publisher(target);
  await publishAll(publisher, followers, params.liveEvents);
  const delivered = () => followers.reduce((sum, f) => sum + f.received.size, 0);
  await settle(() => delivered() >= params.clients * params.liveEvents, delivered, 2_000, 15_000);
  const liveLost = params.clients * params.liveEvents - delivered();
  closeAll(followers.map((f) => f.client!));
  await Bun.sleep(300);

  await publishAll(publisher, followers, params.missedEvents);
  for (const follower of followers) follower.caughtUpAt = 0;
  console.log("KILL");
  const answer = await harnessAnswer(30_000);
  const [, reopenText, restartText] = answer.split(" ");
  const reopenAt = Number(reopenText);
  if (!answer.startsWith("RESTARTED") || !Number.isFinite(reopenAt)) return { error: `harness answered "${answer}"` };

  mark("start");
  let notRecovered = 0;
  let reconnectFailures = 0;
  let firstError: string | undefined;
  next = 0;
  await Promise.all(Array.from({ length: 200 }, async () => {
    while (next < followers.length) {
      const follower = followers[next++]!;
      const top = Math.max(0, ...[...follower.received.keys()]);
      try {
        const subscribed = await attach(target, follower, { offset: top, epoch: follower.epoch });
        if (subscribed.recovered === false) notRecovered++;
      } catch (error) {
        reconnectFailures++;
        firstError ??= (error as Error).message;
      }
    }
  }));
  const caughtUp = () => followers.filter((f) => f.caughtUpAt > 0).length;
  await settle(() => caughtUp() === followers.length, delivered, 2_000, 15_000);
  mark("end");
  closeAll(followers.flatMap((f) => (f.client ? [f.client] : [])));

  let lost = 0;
  let dup = 0;
  let replayed = 0;
  for (const follower of followers) {
    for (const offset of follower.expected) {
      const times = follower.received.get(offset) ?? 0;
      if (times === 0) lost++;
      if (times > 1) dup += times - 1;
    }
    replayed += params.missedEvents;
  }
  const lastCaughtUp = Math.max(...followers.map((f) => f.caughtUpAt));
  return {
    count: caughtUp(),
    expected: followers.length,
    durationMs: caughtUp() === followers.length ? lastCaughtUp - reopenAt : Number.NaN,
    lost,
    dup,
    connections: followers.length - reconnectFailures,
    refused: reconnectFailures,
    extra: {
      "kill → port answers ms": Number(restartText),
      "events to catch up": replayed,
      "recovered:false answers": notRecovered,
      "lost before the kill": liveLost,
      ...(firstError ? { "first reconnect error": firstError } : {}),
    },
  };
}
