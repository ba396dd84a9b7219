import { afterEach, beforeEach, describe, expect, jest, test } from "bun:test";
import { AgentRunTracker } from "../../src/domain/agent-tracker.ts";
import type { PublishItem } from "../../src/engine/types.ts";

const item = (event: string, data: unknown, channel = "user:alice"): PublishItem => ({ channel, event, dataJson: JSON.stringify(data), critical: true });

describe("AgentRunTracker", () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  function tracker(timeoutMs = 1000, trackPublished = true) {
    const failed: Array<{ channel: string; run: string; reason: string }> = [];
    const t = new AgentRunTracker({
      timeoutMs,
      trackPublished,
      fail: async (channel, data) => {
        failed.push({ channel, run: data.run, reason: data.reason });
        t.observe([item("agent_failed", data, channel)]);
      },
    });
    return { t, failed };
  }

  test("by default a published agent_started is not tracked; a server-started run is, and a published terminal event ends it", async () => {
    const { t, failed } = tracker(1000, false);
    t.observe([item("agent_started", { run: "backend-run" })]);
    expect(t.active).toBe(0);
    t.start("user:alice", "rpc-run");
    t.observe([item("agent_started", { run: "rpc-run" })]);
    expect(t.active).toBe(1);
    t.observe([item("agent_completed", { run: "rpc-run" })]);
    jest.advanceTimersByTime(1000);
    await Promise.resolve();
    expect({ active: t.active, failed }).toEqual({ active: 0, failed: [] });
  });

  test("a run with no terminal event fails at the timeout, not before", async () => {
    const { t, failed } = tracker();
    t.observe([item("agent_started", { run: "r1" })]);
    jest.advanceTimersByTime(999);
    expect(failed).toEqual([]);
    jest.advanceTimersByTime(1);
    await Promise.resolve();
    expect(failed).toEqual([{ channel: "user:alice", run: "r1", reason: "timeout" }]);
    expect(t.active).toBe(0);
  });

  test("agent_completed or agent_failed ends tracking", () => {
    const { t, failed } = tracker();
    t.observe([item("agent_started", { run: "r1" }), item("agent_started", { run: "r2" })]);
    t.observe([item("agent_completed", { run: "r1" }), item("agent_failed", { run: "r2", reason: "tool crashed" })]);
    expect(t.active).toBe(0);
    jest.advanceTimersByTime(5000);
    expect(failed).toEqual([]);
  });

  test("runs are per channel; events without a run id are ignored", () => {
    const { t } = tracker();
    t.observe([item("agent_started", { run: "r1" }, "user:a"), item("agent_started", { run: "r1" }, "user:b"), item("agent_started", { note: 1 }), item("agent_started", "text")]);
    expect(t.active).toBe(2);
    t.observe([item("agent_completed", { run: "r1" }, "user:a")]);
    expect(t.active).toBe(1);
  });

  test("stop forgets every run", () => {
    const { t, failed } = tracker();
    t.start("user:a", "r1");
    t.stop();
    jest.advanceTimersByTime(5000);
    expect(failed).toEqual([]);
    t.start("user:a", "r2");
    expect(t.active).toBe(0);
  });

  test("timeoutMs is validated", () => {
    expect(() => new AgentRunTracker({ timeoutMs: 0, fail: async () => {} })).toThrow(RangeError);
  });
});
