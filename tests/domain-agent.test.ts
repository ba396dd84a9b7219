/**
 * The agent behind `rpc` (PROTOCOL.md §4): the demo agent, the run tracker, and the backend proxy
 * under its deadline and circuit breaker, against a fake backend the test controls.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connectWelcomed, type TestClient } from "./helpers/client.ts";
import { startServer, type TestServer } from "./helpers/server.ts";
import { createExtensions } from "../src/domain/index.ts";
import { DEMO_AGENT_EVENTS } from "../src/domain/demo-agent.ts";

const userClient = async (s: TestServer, user: string) => {
  const c = await connectWelcomed(`${s.ws}?token=${await s.token(user)}`);
  await c.request({ type: "subscribe", channel: `user:${user}` });
  return c;
};
const rpc = (c: TestClient, method: string, data: unknown = null, timeoutMs = 5000) => c.request({ type: "rpc", method, data }, timeoutMs);

describe("demo agent (no backend URL)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ config: { agent: { executionTimeoutMs: 400, trackPublishedRuns: true } } });
  });
  afterAll(() => server.stop());

  test("agent.run answers a run id at once, then emits all five events in order, critical", async () => {
    const c = await userClient(server, "demo-user");
    const answer = await rpc(c, "agent.run", { prompt: "summarise" });
    // Read before matching: Bun 1.4.4's toMatchObject writes asymmetric matchers into the received object.
    const run = answer.data.run;
    expect(answer).toMatchObject({ type: "result", data: { run: expect.any(String) } });
    const events = await c.collect((f) => f.type === "event" && f.stream === undefined && f.data?.run === run, 5);
    expect(events.map((e) => e.event)).toEqual([...DEMO_AGENT_EVENTS]);
    expect(events.every((e) => e.critical === true && e.channel === "user:demo-user")).toBe(true);
    c.close();
  });

  test("an unknown method is not_found", async () => {
    const c = await userClient(server, "demo-unknown");
    expect(await rpc(c, "nothing.here")).toMatchObject({ type: "error", code: "not_found" });
    c.close();
  });

  test("jobs.simulate starts a job owned by the caller", async () => {
    const c = await userClient(server, "demo-jobs");
    const answer = await rpc(c, "jobs.simulate", {});
    const { channel, epoch } = answer.data;
    expect(answer).toMatchObject({ type: "result", data: { job: expect.any(String), channel: expect.stringMatching(/^job:/), epoch: expect.any(String) } });
    expect(await c.request({ type: "subscribe", channel, since: { offset: 0, epoch } })).toMatchObject({ type: "subscribed" });
    await c.next((f) => f.type === "event" && f.event === "job_completed", 10_000);
    c.close();
  });

  test("one user runs at most three simulated jobs at a time", async () => {
    const c = await userClient(server, "demo-greedy");
    const answers = await Promise.all([1, 2, 3, 4].map(() => rpc(c, "jobs.simulate", {})));
    expect(answers.map((a) => a.type === "result" ? "ok" : a.code).sort()).toEqual(["limit_exceeded", "ok", "ok", "ok"]);
    c.close();
  });

  test("the tracker fails a run that does not complete in time, and leaves completed runs alone", async () => {
    const c = await userClient(server, "tracked");
    const publish = (event: string, run: string) => server.publish({ channel: "user:tracked", event, data: { run } });
    expect((await publish("agent_started", "done-run")).status).toBe(200);
    expect((await publish("agent_completed", "done-run")).status).toBe(200);
    expect((await publish("agent_started", "stuck-run")).status).toBe(200);
    const failed = await c.next((f) => f.type === "event" && f.event === "agent_failed", 5000);
    expect(failed).toMatchObject({ channel: "user:tracked", critical: true, data: { run: "stuck-run", reason: "timeout", timeoutMs: 400 } });
    await c.request({ type: "ping" });
    expect(c.frames.filter((f) => f.event === "agent_failed").map((f) => f.data.run)).toEqual(["stuck-run"]);
    expect((await server.stats()).agent).toMatchObject({ activeRuns: 0, timedOut: 1 });
    c.close();
  });
});

describe("agent backend behind the breaker", () => {
  type Mode = "ok" | "hang" | "fail" | "slow" | "missing";
  let mode: Mode = "ok";
  const received: unknown[] = [];
  const backend = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const body = await req.json();
      received.push(body);
      switch (mode) {
        case "hang":
          return new Promise<Response>(() => {});
        case "fail":
          return new Response("boom", { status: 500 });
        case "slow":
          await Bun.sleep(600);
          return Response.json({ late: true });
        case "missing":
          return Response.json({ message: "no such method" }, { status: 404 });
        case "ok":
          return Response.json({ run: "backend-run", echo: body });
      }
    },
  });
  let clock = Date.now();
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({
      config: {
        agent: { url: `http://127.0.0.1:${backend.port}/rpc`, rpcTimeoutMs: 300, executionTimeoutMs: 60_000 },
        resilience: { breakerFailures: 3, breakerWindowMs: 60_000, breakerRecoveryMs: 10_000 },
      },
      // Only the breaker's clock is injected: deadlines run on real time.
      extensions: (ctx) => createExtensions(ctx, { now: () => clock }),
    });
  });
  afterAll(async () => {
    await server.stop();
    backend.stop(true);
  });

  const breakerState = async () => (await server.stats()).breakers.agent.state;

  test("rpc is proxied as {user, method, data}; a 4xx maps to its code and is no breaker failure", async () => {
    const c = await userClient(server, "proxied");
    mode = "ok";
    expect(await rpc(c, "agent.run", { prompt: "hi" })).toMatchObject({ type: "result", data: { run: "backend-run", echo: { user: "proxied", method: "agent.run", data: { prompt: "hi" } } } });
    mode = "missing";
    expect(await rpc(c, "agent.other")).toMatchObject({ type: "error", code: "not_found", message: "no such method" });
    expect((await server.stats()).breakers.agent).toMatchObject({ state: "closed", failures: 0 });
    c.close();
  });

  test("hang, 500 and slow answer timeout/unavailable within the deadline; the breaker opens, the server carries on, then it recovers", async () => {
    const c = await userClient(server, "breaker-user");
    const timed = async (m: Mode) => {
      mode = m;
      const started = performance.now();
      const answer = await rpc(c, "agent.run", {});
      return { code: answer.code, withinDeadline: performance.now() - started < 300 + 250 };
    };
    expect(await timed("hang")).toEqual({ code: "timeout", withinDeadline: true });
    expect(await timed("fail")).toEqual({ code: "unavailable", withinDeadline: true });
    expect(await timed("slow")).toEqual({ code: "timeout", withinDeadline: true });
    expect(await breakerState()).toBe("open");

    // Open: refused at once, without calling the backend.
    const calls = received.length;
    mode = "ok";
    const refused = await timed("ok");
    expect(refused.code).toBe("unavailable");
    expect(received.length).toBe(calls);

    // The rest of the server is unaffected: publish and delivery work meanwhile.
    const res = await server.publish({ channel: "user:breaker-user", event: "still_here", data: 1 });
    expect(res.status).toBe(200);
    expect((await c.next((f) => f.event === "still_here")).data).toBe(1);

    // After the cooldown one probe passes; its success closes the breaker.
    clock += 10_001;
    expect(await breakerState()).toBe("half_open");
    expect(await rpc(c, "agent.run", {})).toMatchObject({ type: "result", data: { run: "backend-run" } });
    expect(await breakerState()).toBe("closed");
    c.close();
  });

  test("the breaker shows in /metrics as courier_breaker_state{dependency=\"agent\"}", async () => {
    const text = await (await fetch(`${server.http}/metrics`)).text();
    expect(text).toMatch(/courier_breaker_state\{[^}]*dependency="agent"[^}]*\} 0/);
  });
});
