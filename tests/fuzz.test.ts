/**
 * Seeded fuzzing against the real server: hostile WebSocket frames over many connections and
 * hostile HTTP requests, while healthy clients receive a steady stream of publishes. The server
 * must stay healthy, answer every hostile request with the 4xx §2 names (never a 5xx), lose no
 * healthy event, and log no secret.
 *
 * Reproduce a failure with the seed it prints: `FUZZ_SEED=<seed> bun test tests/fuzz.test.ts`.
 * `FUZZ_FRAMES` and `FUZZ_REQUESTS` scale the run (defaults 3,000 and 1,500).
 */
import { expect, test } from "bun:test";
import { SignJWT } from "jose";
import { join } from "node:path";
import { connectWelcomed, type Frame, type TestClient } from "./helpers/client.ts";
import { hostileFrame, type ConnState, type Expectation, type HostileFrame } from "./helpers/fuzz-frames.ts";
import { hostileRequest, rawRequest, type HostileRequest, type HttpFuzzContext } from "./helpers/fuzz-http.ts";
import { Random, fuzzSeed } from "./helpers/fuzz-random.ts";
import { API_KEY, JWT_SECRET, startServer, type TestServer } from "./helpers/server.ts";
import { CloseCode, ErrorCode } from "../src/protocol/codes.ts";

const SEED = fuzzSeed();
const FRAMES = Number(process.env.FUZZ_FRAMES ?? 3000);
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 1500);
const WS_WORKERS = 4;
const HTTP_WORKERS = 4;
const HEALTHY_CLIENTS = 3;
const SERVER_TYPES = new Set(["welcome", "subscribed", "unsubscribed", "event", "pong", "result", "error", "reconnect"]);
const ERROR_CODES = new Set<string>(Object.values(ErrorCode));
const REPO_ROOT = join(import.meta.dir, "..");

/** Problems found, each naming the input; the run goes on so one report shows them all. */
class Problems {
  readonly list: string[] = [];
  add(message: string): void {
    if (this.list.length < 40) this.list.push(message);
  }
}

const validId = (id: unknown) => (typeof id === "string" && id.length <= 64) || (Number.isSafeInteger(id) && (id as number) >= 0);

test(`hostile frames and requests leave the server healthy and healthy clients gap-free (FUZZ_SEED=${SEED})`, async () => {
  const started = performance.now();
  // No feature modules: the oracle knows exactly which routes and rpc methods exist.
  const server = await startServer({ config: { limits: { maxPublishBodyBytes: 64 * 1024 }, delivery: { slowPathBytes: 16 * 1024 } }, extensions: () => [] });
  const problems = new Problems();
  try {
    const rng = new Random(SEED);
    const healthy = await startHealthy(server);
    const done = { hostile: false };
    const publisher = publishSteadily(server, rng.fork(), healthy.channels, done, problems);

    const frameBudget = { left: FRAMES };
    const requestBudget = { left: REQUESTS };
    const ctx = await httpContext(server);
    const counts = { connections: 0, closes: new Map<number, number>(), statuses: new Map<number, number>() };
    await Promise.all([
      ...Array.from({ length: WS_WORKERS }, (_, w) => wsWorker(server, w, rng.fork(), frameBudget, healthy.channels, problems, counts)),
      ...Array.from({ length: HTTP_WORKERS }, () => httpWorker(server, rng.fork(), ctx, requestBudget, problems, counts)),
    ]);
    done.hostile = true;
    const published = await publisher;

    // Every healthy client got every event on each of its channels, in order, with no gap.
    for (const client of healthy.clients) {
      for (const channel of client.channels) {
        const offsets = published.get(channel) ?? [];
        const last = offsets.length > 0 ? Math.max(...offsets) : 0;
        if (last > 0) await client.c.next((f) => f.type === "event" && f.channel === channel && f.offset === last, 10_000).catch(() => {});
        const got = client.c.frames.filter((f) => f.type === "event" && f.channel === channel).map((f) => f.offset as number);
        const want = Array.from({ length: last }, (_, i) => i + 1);
        if ([...offsets].sort((a, b) => a - b).join() !== want.join()) problems.add(`publisher offsets on ${channel} are not 1..${last}`);
        if (got.join() !== want.join()) problems.add(`${client.user} on ${channel}: got ${got.length} events, want ${last}; first gap near ${got.findIndex((o, i) => o !== i + 1)}`);
      }
      const bad = client.c.frames.filter((f) => f.type === "error");
      if (bad.length > 0) problems.add(`${client.user} got error frames: ${JSON.stringify(bad.slice(0, 3))}`);
      if (client.c.ws.readyState !== WebSocket.OPEN) problems.add(`${client.user} was disconnected`);
    }
    const health = await fetch(`${server.http}/health`);
    if (health.status !== 200) problems.add(`/health answered ${health.status} at the end`);

    // Nothing leaks: every hostile connection and subscription is gone, only the healthy remain.
    const { manager, hub } = server.courier.ctx;
    if (manager.size !== HEALTHY_CLIENTS) problems.add(`${manager.size} connections left, want ${HEALTHY_CLIENTS}`);
    const subscriptions = JSON.stringify(hub.subscriptionsByKind());
    if (subscriptions !== JSON.stringify({ public: HEALTHY_CLIENTS * 2 })) problems.add(`subscriptions left: ${subscriptions}`);

    // Rejections were counted by reason.
    const metrics = await (await fetch(`${server.http}/metrics`)).text();
    for (const reason of ["bad_json", "too_deep", "not_object", "unknown_type", "invalid", "bad_channel", "binary", "too_large"]) {
      if (!metrics.includes(`courier_frames_rejected_total{reason="${reason}"}`)) problems.add(`no courier_frames_rejected_total{reason="${reason}"}`);
    }

    // No key, secret or token in any log line; nothing logged as an error.
    const logs = server.logs.join("\n");
    if (logs.includes(API_KEY)) problems.add("the API key reached the logs");
    if (logs.includes(JWT_SECRET)) problems.add("the JWT secret reached the logs");
    if (/eyJ[\w-]*\.[\w-]+\.[\w-]*/.test(logs)) problems.add("a JWT reached the logs");
    for (const line of server.logs) if (line.includes('"level":"error"')) problems.add(`error logged: ${line.slice(0, 200)}`);

    for (const client of healthy.clients) client.c.close();
    const elapsedS = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `fuzz seed ${SEED}: ${FRAMES} frames over ${counts.connections} connections (closes ${JSON.stringify(Object.fromEntries(counts.closes))}), ` +
        `${REQUESTS} requests (statuses ${JSON.stringify(Object.fromEntries(counts.statuses))}), ` +
        `${[...published.values()].reduce((n, o) => n + o.length, 0)} healthy events, ${elapsedS} s`,
    );
  } finally {
    await server.stop();
  }
  if (problems.list.length > 0) console.error(`fuzz failed: reproduce with FUZZ_SEED=${SEED}`);
  expect(problems.list).toEqual([]);
}, 60_000);

interface Healthy {
  user: string;
  c: TestClient;
  channels: string[];
}

async function startHealthy(server: TestServer): Promise<{ clients: Healthy[]; channels: string[] }> {
  const shared = "public:healthy-all";
  const clients: Healthy[] = [];
  for (let i = 0; i < HEALTHY_CLIENTS; i++) {
    const user = `healthy-${i}`;
    const c = await connectWelcomed(`${server.ws}?token=${await server.token(user)}`);
    const channels = [`public:healthy-${i}`, shared];
    for (const channel of channels) expect(await c.request({ type: "subscribe", channel })).toMatchObject({ type: "subscribed", channel, offset: 0 });
    // A well-behaved client acknowledges, throttled so it never nears the frame rate limit.
    let lastAck = 0;
    c.ws.addEventListener("message", (m) => {
      const now = performance.now();
      if (now - lastAck < 100) return;
      const frame = JSON.parse(String(m.data));
      if (frame.type !== "event") return;
      lastAck = now;
      c.send({ type: "ack", channel: frame.channel, offset: frame.offset });
    });
    clients.push({ user, c, channels });
  }
  return { clients, channels: [...new Set(clients.flatMap((c) => c.channels))] };
}

/** Publishes to the healthy channels, one request at a time, until the hostile drivers finish. */
async function publishSteadily(server: TestServer, rng: Random, channels: string[], done: { hostile: boolean }, problems: Problems): Promise<Map<string, number[]>> {
  const published = new Map<string, number[]>(channels.map((c) => [c, []]));
  let n = 0;
  while (!done.hostile || n < 200) {
    const batch = rng.chance(0.3);
    const items = Array.from({ length: batch ? rng.int(1, 5) : 1 }, () => ({ channel: rng.pick(channels), event: rng.pick(["tick", "agent_thinking"]), data: { n: n++ }, critical: rng.chance(0.1) }));
    const res = batch
      ? await fetch(`${server.http}/v1/publish/batch`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ items }) })
      : await server.publish(items[0]!);
    if (res.status !== 200) {
      problems.add(`healthy publish answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
      continue;
    }
    const body = (await res.json()) as { results?: { channel: string; offset: number }[]; channel: string; offset: number };
    for (const r of body.results ?? [body]) published.get(r.channel)!.push(r.offset);
  }
  return published;
}

async function httpContext(server: TestServer): Promise<HttpFuzzContext> {
  const secret = new TextEncoder().encode(JWT_SECRET);
  const expired = await new SignJWT({ sub: "fz" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime(Math.floor(Date.now() / 1000) - 600).sign(secret);
  const otherSecret = await new SignJWT({ sub: "fz" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h").sign(new TextEncoder().encode("another-secret-0123456789abcdef"));
  const none = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from('{"sub":"fz","exp":9999999999}').toString("base64url")}.`;
  return {
    apiKey: API_KEY,
    user: "fz-reader",
    token: await server.token("fz-reader"),
    badTokens: [expired, otherSecret, none, "not.a.jwt", "x".repeat(4000), API_KEY],
    maxPublishBodyBytes: server.config.limits.maxPublishBodyBytes,
    batchMaxItems: server.config.limits.batchMaxItems,
    maxJsonDepth: server.config.limits.maxJsonDepth,
    replayLimit: server.config.delivery.replayLimit,
  };
}

async function httpWorker(
  server: TestServer,
  rng: Random,
  ctx: HttpFuzzContext,
  budget: { left: number },
  problems: Problems,
  counts: { statuses: Map<number, number> },
): Promise<void> {
  while (budget.left > 0) {
    const n = budget.left--;
    const request = hostileRequest(rng, ctx);
    let status: number;
    let headers: Headers | Record<string, string>;
    let text: string;
    try {
      if (request.raw) {
        const res = await rawRequest(server.http, request);
        ({ status, headers, body: text } = res);
      } else {
        const res = await fetch(`${server.http}${request.path}`, { method: request.method, headers: request.headers, body: request.body as BodyInit | undefined });
        status = res.status;
        headers = res.headers;
        text = await res.text();
      }
    } catch (error) {
      problems.add(`${request.label}: no answer (${(error as Error).message})`);
      continue;
    }
    counts.statuses.set(status, (counts.statuses.get(status) ?? 0) + 1);
    checkAnswer(request, status, headers, text, problems);
    if (n % 50 === 0) {
      const health = await fetch(`${server.http}/health`);
      if (health.status !== 200) problems.add(`/health answered ${health.status} during the run`);
    }
  }
}

function checkAnswer(request: HostileRequest, status: number, headers: Headers | Record<string, string>, text: string, problems: Problems): void {
  const header = (name: string) => (headers instanceof Headers ? headers.get(name) : (headers[name] ?? null));
  const what = `${request.method} ${request.path.slice(0, 80)} (${request.label})`;
  if (!request.expect.includes(status)) problems.add(`${what}: answered ${status}, want ${request.expect.join("|")}: ${text.slice(0, 200)}`);
  if (status >= 500) problems.add(`${what}: a 5xx`);
  if (status === 204) {
    if (text !== "") problems.add(`${what}: a 204 with a body`);
    return;
  }
  if (!header("content-type")?.startsWith("application/json")) problems.add(`${what}: content-type ${header("content-type")}`);
  if (header("x-content-type-options") !== "nosniff") problems.add(`${what}: no x-content-type-options: nosniff`);
  if (header("cache-control") !== "no-store") problems.add(`${what}: cache-control ${header("cache-control")}`);
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    problems.add(`${what}: the body is not JSON: ${text.slice(0, 100)}`);
    return;
  }
  if (status >= 400 && (typeof body.error !== "string" || typeof body.message !== "string")) problems.add(`${what}: not {"error","message"}: ${text.slice(0, 200)}`);
  if (status >= 400 && !ERROR_CODES.has(body.error)) problems.add(`${what}: unknown error code ${body.error}`);
  if (/\.ts:\d+|\n\s+at\s/.test(text) || text.includes(REPO_ROOT)) problems.add(`${what}: a stack trace or path in the answer: ${text.slice(0, 200)}`);
  if (text.includes(JWT_SECRET)) problems.add(`${what}: the JWT secret in the answer`);
  if (status >= 400 && text.includes(API_KEY)) problems.add(`${what}: the API key echoed`);
  if (status >= 400 && /eyJ[\w-]*\.[\w-]+\./.test(text)) problems.add(`${what}: a token echoed`);
}

async function wsWorker(
  server: TestServer,
  w: number,
  rng: Random,
  budget: { left: number },
  liveChannels: string[],
  problems: Problems,
  counts: { connections: number; closes: Map<number, number> },
): Promise<void> {
  const limits = server.config.limits;
  for (let conn = 0; budget.left > 0; conn++) {
    counts.connections++;
    const user = `fz-${w}-${conn}`;
    const c = await connectWelcomed(`${server.ws}?token=${await server.token(user)}`);
    if (rng.chance(0.03)) {
      budget.left -= await flood(c, limits, problems);
      record(counts, await closedWithin(c, 5000));
      continue;
    }
    const state: ConnState = { user, subscribed: new Set(), nextId: 1 };
    let strikes = 0;
    let closedBy: number | null = null;
    // Some connections only make protocol errors, so the strike limit is reached every run.
    const strikeOut = rng.chance(0.05);
    for (let i = strikeOut ? limits.protocolErrorStrikes + 5 : rng.int(5, 40); i > 0 && budget.left > 0 && closedBy === null; i--) {
      budget.left--;
      let frame = hostileFrame(rng, state, limits, liveChannels);
      while (strikeOut && frame.expect.kind !== "strike") frame = hostileFrame(rng, state, limits, liveChannels);
      const { got, closed } = await exchange(c, frame, state);
      closedBy = closed;
      let expectation: Expectation = frame.expect;
      if (expectation.kind === "strike" && ++strikes > limits.protocolErrorStrikes) expectation = { kind: "close", code: CloseCode.ProtocolErrors };
      const issue = judge(expectation, got, closed);
      if (issue) problems.add(`${user} frame "${frame.label}" ${describe(frame.payload)}: ${issue}`);
      for (const f of got) {
        if (f.type === "subscribed" && frame.joins) state.subscribed.add(frame.joins);
        if (f.type === "unsubscribed" && frame.leaves) state.subscribed.delete(frame.leaves);
      }
    }
    if (closedBy === null) {
      c.close();
      await closedWithin(c, 5000);
    } else record(counts, closedBy);
    const health = await fetch(`${server.http}/health`);
    if (health.status !== 200) problems.add(`/health answered ${health.status} during the run`);
  }
}

function record(counts: { closes: Map<number, number> }, code: number): void {
  counts.closes.set(code, (counts.closes.get(code) ?? 0) + 1);
}

let syncIds = 0;

/** Sends one frame and waits (bounded) until its answer, a sync pong, or the close. */
async function exchange(c: TestClient, frame: HostileFrame, _state: ConnState): Promise<{ got: Frame[]; closed: number | null }> {
  const start = c.frames.length;
  c.ws.send(frame.payload);
  let sync: string | undefined;
  const expectation = frame.expect;
  let match: (f: Frame) => boolean;
  if (expectation.kind === "answer") {
    match = (f) => f.id === expectation.id && f.type !== "event";
  } else if (expectation.kind === "close") {
    match = () => false;
  } else {
    sync = `sync-${syncIds++}`;
    if (c.ws.readyState === WebSocket.OPEN) c.ws.send(JSON.stringify({ type: "ping", id: sync }));
    match = (f) => f.type === "pong" && f.id === sync;
  }
  const waited = await Promise.race([
    c.next((f) => c.frames.indexOf(f) >= start && match(f), 5000).then(
      () => "answered",
      (error: Error) => (error.message.startsWith("timed out") ? "timed out" : "closed"),
    ),
    c.closed.then(() => "closed"),
  ]);
  let closed: number | null = null;
  if (waited === "closed" || c.ws.readyState === WebSocket.CLOSED) closed = (await c.closed).code;
  else if (waited === "timed out") closed = -1;
  const got = c.frames.slice(start).filter((f) => f.type !== "event" && !(sync !== undefined && f.type === "pong" && f.id === sync));
  return { got, closed };
}

/** What is wrong with the server's answer to one frame, or null. */
function judge(expectation: Expectation, got: Frame[], closed: number | null): string | null {
  for (const f of got) {
    if (!SERVER_TYPES.has(f.type)) return `unknown frame type ${JSON.stringify(f).slice(0, 100)}`;
    if ("id" in f && !validId(f.id)) return `echoed an invalid id ${JSON.stringify(f.id).slice(0, 40)}`;
    if (f.type === "error") {
      if (!ERROR_CODES.has(f.code) || f.code === ErrorCode.Internal) return `error code ${f.code}`;
      if (typeof f.message !== "string" || f.message.length > 400) return `error message ${JSON.stringify(f.message).slice(0, 60)}`;
    }
  }
  if (closed === -1) return `no answer within 5 s; got ${JSON.stringify(got).slice(0, 200)}`;
  const idOk = (f: Frame, id: unknown) => (id === undefined ? !("id" in f) : f.id === id);
  switch (expectation.kind) {
    case "close":
      return closed === expectation.code ? null : `want close ${expectation.code}, got ${closed ?? "no close"}: ${JSON.stringify(got).slice(0, 200)}`;
    case "strike": {
      if (closed !== null) return `closed ${closed} on strike`;
      const [f, ...rest] = got;
      if (!f || rest.length > 0 || f.type !== "error" || f.code !== ErrorCode.BadRequest || !idOk(f, expectation.id)) {
        return `want one bad_request error${expectation.id === undefined ? " without id" : ` with id ${JSON.stringify(expectation.id)}`}, got ${JSON.stringify(got).slice(0, 200)}`;
      }
      return null;
    }
    case "error": {
      if (closed !== null) return `closed ${closed}`;
      const [f, ...rest] = got;
      if (!f || rest.length > 0 || f.type !== "error" || f.code !== expectation.code || !idOk(f, expectation.id)) return `want one ${expectation.code} error, got ${JSON.stringify(got).slice(0, 200)}`;
      return null;
    }
    case "answer": {
      if (closed !== null) return `closed ${closed}: ${JSON.stringify(got).slice(0, 200)}`;
      const [f, ...rest] = got;
      const type = f?.type === "error" ? `error:${f.code}` : f?.type;
      if (!f || rest.length > 0 || !expectation.types.includes(type!) || f.id !== expectation.id) return `want one ${expectation.types.join("|")} with id ${JSON.stringify(expectation.id)}, got ${JSON.stringify(got).slice(0, 200)}`;
      return null;
    }
    case "silent":
      if (closed !== null) return `closed ${closed}`;
      return got.length === 0 ? null : `want nothing, got ${JSON.stringify(got).slice(0, 200)}`;
  }
}

/** Floods pings past the burst and the strikes: rate_limited errors, then 4429. Returns frames sent. */
async function flood(c: TestClient, limits: TestServer["config"]["limits"], problems: Problems): Promise<number> {
  const n = limits.frameBurst + limits.rateLimitStrikes + 20;
  for (let i = 0; i < n && c.ws.readyState === WebSocket.OPEN; i++) c.ws.send('{"type":"ping"}');
  const code = await closedWithin(c, 5000);
  if (code !== CloseCode.TooManyFrames) problems.add(`flood: closed ${code}, want 4429`);
  if (!c.frames.some((f) => f.type === "error" && f.code === ErrorCode.RateLimited)) problems.add("flood: no rate_limited error frame before the close");
  return n;
}

/** The close code, or -1 when the connection is still open after `ms`. */
async function closedWithin(c: TestClient, ms: number): Promise<number> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<number>((resolve) => (timer = setTimeout(() => resolve(-1), ms)));
  const code = await Promise.race([c.closed.then((e) => e.code), timeout]);
  clearTimeout(timer);
  return code;
}

function describe(payload: string | Uint8Array): string {
  return typeof payload === "string" ? JSON.stringify(payload.length > 120 ? payload.slice(0, 120) + `…(${payload.length})` : payload) : `<${payload.length} binary bytes>`;
}
