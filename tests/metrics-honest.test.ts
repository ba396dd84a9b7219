/**
 * Metrics that tell the truth (issue #17 item 4): confirmation time-outs counted for a live client
 * that never acks, once per event; every family present on a fresh node's first scrape; agent runs
 * and recoveries as metrics; connect duration measured from the upgrade request.
 */
import { describe, expect, test } from "bun:test";
import { AgentRunTracker } from "../src/domain/agent-tracker.ts";
import { METRIC_NAMES } from "../src/telemetry/index.ts";
import { httpRequestAttributes } from "../src/telemetry/http-attributes.ts";
import { SWEEP_MS } from "../src/server/housekeeping.ts";
import { connectWelcomed } from "./helpers/client.ts";
import { FakeScheduler } from "./helpers/fake-scheduler.ts";
import { startServer, type TestServer } from "./helpers/server.ts";

/** Sum of the samples of `name` whose labels contain `labelPart`. */
async function metric(server: TestServer, name: string, labelPart = ""): Promise<number> {
  const text = await (await fetch(`${server.http}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${name} `) || (l.startsWith(`${name}{`) && l.includes(labelPart)))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

describe("confirmation time-outs", () => {
  test("a live client that answers pings but never acks is counted timed out once per event, and stays connected", async () => {
    const scheduler = new FakeScheduler(Date.now());
    await using server = await startServer({ now: scheduler.clock, scheduler });
    const { confirmTimeoutMs, probeTimeoutMs } = server.config.delivery;
    const client = await connectWelcomed(`${server.ws}?token=${await server.token("no-acks")}`);
    await client.request({ type: "subscribe", channel: "user:no-acks" });
    await server.publish({ channel: "user:no-acks", event: "agent_started" });
    await client.next((f) => f.type === "event" && f.offset === 1);
    // The server has seen every control frame the client sent before this answer (one socket, in order).
    const roundTrip = () => client.request({ type: "ping" });

    scheduler.advance(confirmTimeoutMs - 1);
    expect(await metric(server, "courier_confirmations_total", 'result="timed_out"')).toBe(0);
    scheduler.advance(SWEEP_MS + 1);
    expect(await metric(server, "courier_confirmations_total", 'result="timed_out"')).toBe(1);

    // The confirmation probe goes out and is answered: the connection is alive, and probed again
    // and again as time passes, but the event stays counted once.
    for (let i = 0; i < 3; i++) {
      await roundTrip();
      await roundTrip();
      scheduler.advance(Math.max(confirmTimeoutMs, probeTimeoutMs) + SWEEP_MS);
    }
    await roundTrip();
    expect(await metric(server, "courier_confirmations_total", 'result="timed_out"')).toBe(1);

    // A second critical event times out on its own; a late ack confirms neither.
    await server.publish({ channel: "user:no-acks", event: "agent_completed" });
    await client.next((f) => f.type === "event" && f.offset === 2);
    await roundTrip();
    scheduler.advance(confirmTimeoutMs + SWEEP_MS);
    await roundTrip();
    expect(await metric(server, "courier_confirmations_total", 'result="timed_out"')).toBe(2);
    client.send({ type: "ack", channel: "user:no-acks", offset: 2 });
    await roundTrip();
    expect(await metric(server, "courier_confirmations_total", 'result="confirmed"')).toBe(0);
    expect((await server.stats()).confirmations.timedOut).toBe(2);
    expect(server.courier.ctx.manager.size).toBe(1);
    client.close();
  });

  test("an event acked within the timeout is confirmed and never counted timed out", async () => {
    const scheduler = new FakeScheduler(Date.now());
    await using server = await startServer({ now: scheduler.clock, scheduler });
    const client = await connectWelcomed(`${server.ws}?token=${await server.token("acks")}`);
    await client.request({ type: "subscribe", channel: "user:acks" });
    await server.publish({ channel: "user:acks", event: "agent_started" });
    await client.next((f) => f.type === "event");
    client.send({ type: "ack", channel: "user:acks", offset: 1 });
    await client.request({ type: "ping" });
    scheduler.advance(3 * server.config.delivery.confirmTimeoutMs);
    expect(await metric(server, "courier_confirmations_total", 'result="timed_out"')).toBe(0);
    expect(await metric(server, "courier_confirmations_total", 'result="confirmed"')).toBe(1);
    client.close();
  });
});

describe("a fresh node", () => {
  test("every metric family is in the first scrape, before any traffic", async () => {
    await using server = await startServer();
    const text = await (await fetch(`${server.http}/metrics`)).text();
    const families = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    expect(METRIC_NAMES.filter((name) => !families.has(name))).toEqual([]);
    // Histograms show count 0, nothing made up.
    expect(text).toContain("courier_fanout_latency_seconds_count 0");
    expect(text).toContain('courier_agent_runs_total{result="timed_out"} 0');
    expect(text).toContain('courier_subscriptions{kind="signals"} 0');
  });
});

describe("agent runs", () => {
  test("a demo run that completes is counted with its duration", async () => {
    await using server = await startServer();
    const client = await connectWelcomed(`${server.ws}?token=${await server.token("runner")}`);
    await client.request({ type: "subscribe", channel: "user:runner" });
    await client.request({ type: "rpc", method: "agent.run", data: { prompt: "hi" } });
    await client.next((f) => f.type === "event" && f.event === "agent_completed");
    expect(await metric(server, "courier_agent_runs_total", 'result="completed"')).toBe(1);
    expect(await metric(server, "courier_agent_run_duration_seconds_count", 'result="completed"')).toBe(1);
    expect(await metric(server, "courier_agent_run_duration_seconds_sum", 'result="completed"')).toBeGreaterThan(0);
    client.close();
  });

  test("the tracker reports completed, failed and timed-out runs with their durations", async () => {
    let t = 1000;
    const ended: [string, number][] = [];
    const timedOut = Promise.withResolvers<void>();
    const tracker: AgentRunTracker = new AgentRunTracker({
      timeoutMs: 5,
      trackPublished: true,
      now: () => t,
      // Storing agent_failed goes through the observer, as the publish pipeline does.
      fail: async (channel, data): Promise<void> => tracker.observe([{ channel, event: "agent_failed", dataJson: JSON.stringify(data), critical: true }]),
      onEnded: (result, ms) => {
        ended.push([result, ms]);
        if (result === "timed_out") timedOut.resolve();
      },
    });
    const item = (event: string, run: string) => ({ channel: "user:a", event, dataJson: JSON.stringify({ run }), critical: true });
    tracker.observe([item("agent_started", "ok"), item("agent_started", "bad")]);
    t += 250;
    tracker.observe([item("agent_completed", "ok"), item("agent_failed", "bad")]);
    tracker.observe([item("agent_started", "slow")]);
    t += 40;
    await timedOut.promise;
    tracker.stop();
    expect(ended).toEqual([["completed", 250], ["failed", 250], ["timed_out", 40]]);
  });
});

describe("recovery and connect durations", () => {
  test("a since-subscribe records the time to the end of its replay; connects are timed from the upgrade request", async () => {
    await using server = await startServer();
    await server.publish({ channel: "user:back", event: "note", data: 1 });
    const client = await connectWelcomed(`${server.ws}?token=${await server.token("back")}`);
    const first = await client.request({ type: "subscribe", channel: "user:back" });
    await client.request({ type: "unsubscribe", channel: "user:back" });
    expect(await metric(server, "courier_recovery_duration_seconds_count")).toBe(0);
    await client.request({ type: "subscribe", channel: "user:back", since: { offset: 0, epoch: first.epoch } });
    expect(await metric(server, "courier_recovery_duration_seconds_count")).toBe(1);
    // Token verification alone takes tens of µs: a connect measured from the upgrade is never 0.
    expect(await metric(server, "courier_connect_duration_seconds_sum")).toBeGreaterThan(0);
    client.close();
  });
});

describe("http.server.request.duration attributes", () => {
  test("method bounded to the known set, scheme, error.type only on 5xx", () => {
    const req = (method: string, url = "http://x/v1/publish") => new Request(url, { method });
    expect(httpRequestAttributes(req("POST"), "/v1/publish", 200)).toEqual({
      "http.request.method": "POST",
      "http.route": "/v1/publish",
      "http.response.status_code": 200,
      "url.scheme": "http",
    });
    expect(httpRequestAttributes(req("PROPFIND"), "/v1/publish", 405)["http.request.method"]).toBe("_OTHER");
    expect(httpRequestAttributes(req("GET", "https://x/ready"), "/ready", 503)).toMatchObject({ "url.scheme": "https", "error.type": "503" });
    class StoreUnavailableError extends Error {}
    expect(httpRequestAttributes(req("POST"), "/v1/publish", 503, new StoreUnavailableError("down"))["error.type"]).toBe("StoreUnavailableError");
    expect(httpRequestAttributes(req("POST"), "/v1/publish", 400, new TypeError("bad"))["error.type"]).toBeUndefined();
  });

  test("one shared object per label set; a given scheme wins over the URL's", () => {
    const req = (method: string, url = "http://x/v1/publish") => new Request(url, { method });
    const ok = httpRequestAttributes(req("POST"), "/v1/publish", 200);
    expect(httpRequestAttributes(req("POST"), "/v1/publish", 200)).toBe(ok);
    expect(httpRequestAttributes(req("post"), "/v1/publish", 200)).toBe(ok);
    expect(httpRequestAttributes(req("POST"), "/v1/publish", 201)).not.toBe(ok);
    expect(httpRequestAttributes(req("POST"), "/v1/history", 200)["http.route"]).toBe("/v1/history");
    expect(httpRequestAttributes(req("GET"), "/v1/publish", 200)["http.request.method"]).toBe("GET");
    expect(httpRequestAttributes(req("POST", "https://x/v1/publish"), "/v1/publish", 200, undefined, "http")).toBe(ok);
    expect(httpRequestAttributes(req("POST"), "/v1/publish", 200, undefined, "https")["url.scheme"]).toBe("https");
    expect(Object.isFrozen(ok)).toBe(true);
  });
});
