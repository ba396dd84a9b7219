/** Jobs (PROTOCOL.md §2 `/v1/jobs`, §4 `job:<id>`) through the real server and real clients. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connectWelcomed, type Frame, type TestClient } from "./helpers/client.ts";
import { API_KEY, startServer, type TestServer } from "./helpers/server.ts";
import { JOB_PIPELINE } from "../src/domain/job-simulator.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.stop());

const STAGES = JOB_PIPELINE.map((s) => s.stage);
const createJob = (base: string, body: unknown, key = API_KEY) =>
  fetch(`${base}/v1/jobs`, { method: "POST", headers: { authorization: `Bearer ${key}` }, body: typeof body === "string" ? body : JSON.stringify(body) });
const client = async (s: TestServer, user: string) => connectWelcomed(`${s.ws}?token=${await s.token(user)}`);
const eventsOf = (c: TestClient, channel: string, name?: string) => c.frames.filter((f) => f.type === "event" && f.channel === channel && (!name || f.event === name));
/** Everything sent before the pong has arrived: frames on one connection are ordered. */
const settle = (c: TestClient) => c.request({ type: "ping" });

/** Creates a simulated job for `owner` and follows it from its first event to its terminal one. */
async function followJob(s: TestServer, owner: string): Promise<{ job: string; channel: string; epoch: string; c: TestClient; done: Frame }> {
  const res = await createJob(s.http, { owner, simulate: true });
  expect(res.status).toBe(201);
  const { job, channel, epoch } = await res.json();
  expect(channel).toBe(`job:${job}`);
  const c = await client(s, owner);
  expect(await c.request({ type: "subscribe", channel, since: { offset: 0, epoch } })).toMatchObject({ type: "subscribed", recovered: true, epoch });
  const done = await c.next((f) => f.type === "event" && f.channel === channel && (f.event === "job_completed" || f.event === "job_failed"), 10_000);
  return { job, channel, epoch, c, done };
}

describe("simulated jobs", () => {
  test("the owner receives every stage in order, rising progress and the final result", async () => {
    const { job, channel, c, done } = await followJob(server, "job-owner");
    expect(done).toMatchObject({ event: "job_completed", critical: true, data: { job, owner: "job-owner", analysis: { fallback: false, source: "demo" } } });
    const stages = eventsOf(c, channel, "job_stage");
    expect(stages.map((e) => e.data)).toEqual(STAGES.map((stage, index) => ({ stage, index, of: STAGES.length })));
    expect(stages.every((e) => e.critical === true)).toBe(true);
    const progress = eventsOf(c, channel, "job_progress").map((e) => e.data.percent);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress.at(-1)).toBe(100);
    const offsets = eventsOf(c, channel).map((e) => e.offset);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    expect(new Set(offsets).size).toBe(offsets.length);
    c.close();
  });

  test("a late subscriber with since 0 gets every stage change and only the latest progress", async () => {
    const { channel, epoch, c: owner } = await followJob(server, "late-owner");
    owner.close();
    const late = await client(server, "late-owner");
    expect(await late.request({ type: "subscribe", channel, since: { offset: 0, epoch } })).toMatchObject({ recovered: true });
    await settle(late);
    const events = eventsOf(late, channel);
    expect(events.filter((e) => e.event === "job_stage").map((e) => e.data.stage)).toEqual(STAGES);
    expect(events.filter((e) => e.event === "job_progress").map((e) => e.data)).toEqual([{ percent: 100, stage: "insights_ready" }]);
    expect(events.filter((e) => e.event === "job_completed")).toHaveLength(1);
    expect(events.map((e) => e.offset)).toEqual([...events.map((e) => e.offset)].sort((a, b) => a - b));
    late.close();
  });

  test("a non-owner is refused; an unknown job is refused", async () => {
    const { job } = await (await createJob(server.http, { owner: "real-owner" })).json();
    const other = await client(server, "not-the-owner");
    expect(await other.request({ type: "subscribe", channel: `job:${job}` })).toMatchObject({ type: "error", code: "forbidden" });
    expect(await other.request({ type: "subscribe", channel: "job:no-such-job" })).toMatchObject({ type: "error", code: "forbidden" });
    other.close();
  });

  test("the AI stage falls back, clearly marked, when the agent backend is down", async () => {
    using closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    const url = `http://127.0.0.1:${closed.port}/agent`;
    closed.stop(true);
    await using down = await startServer({ config: { agent: { url } } });
    const { done, c } = await followJob(down, "fallback-owner");
    expect(done).toMatchObject({ event: "job_completed", data: { analysis: { fallback: true, reason: "unreachable" } } });
    expect(eventsOf(c, done.channel, "job_stage").map((e) => e.data.stage)).toEqual(STAGES);
    c.close();
  });
});

describe("backend-driven jobs", () => {
  test("a backend publishes progress itself; its terminal event ends the job for the in-flight count", async () => {
    const before = (await server.stats()).jobs.inFlight;
    const res = await createJob(server.http, { owner: "backend-owner" });
    const { job, channel, epoch } = await res.json();
    expect((await server.stats()).jobs.inFlight).toBe(before + 1);
    const c = await client(server, "backend-owner");
    await c.request({ type: "subscribe", channel, since: { offset: 0, epoch } });
    expect((await server.publish({ channel, event: "job_progress", data: { percent: 40, stage: "etl" }, coalesce: "progress" })).status).toBe(200);
    expect((await server.publish({ channel, event: "job_completed", data: { ok: true }, critical: true })).status).toBe(200);
    expect((await c.next((f) => f.event === "job_completed")).data).toEqual({ ok: true });
    expect(eventsOf(c, channel).map((e) => e.event)).toEqual(["job_progress", "job_completed"]);
    expect((await server.stats()).jobs.inFlight).toBe(before);
    expect(job).toBeString();
    c.close();
  });
});

describe("POST /v1/jobs validation", () => {
  test("needs the API key", async () => {
    expect((await createJob(server.http, { owner: "a" }, "wrong-key-0123456789abcdef")).status).toBe(401);
  });

  test("refuses a bad owner, a bad simulate flag and a body that is not JSON", async () => {
    for (const body of [{}, { owner: "" }, { owner: "has space" }, { owner: "x".repeat(129) }, { owner: "a", simulate: "yes" }, "not json", "[1]"]) {
      const res = await createJob(server.http, body);
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
      expect((await res.json()).error).toBe("bad_request");
    }
  });
});

describe("job owners across a restart", () => {
  test("a job's owner can still join it after the server restarts on the same data dir", async () => {
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dataDir = mkdtempSync(join(tmpdir(), "courier-jobs-restart-"));
    try {
      const first = await startServer({ dataDir });
      const res = await createJob(first.http, { owner: "restart-owner" });
      expect(res.status).toBe(201);
      const { job } = await res.json();
      await first.stop();
      const second = await startServer({ dataDir });
      try {
        const c = await client(second, "restart-owner");
        expect(await c.request({ type: "subscribe", channel: `job:${job}` })).toMatchObject({ type: "subscribed" });
        c.close();
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
