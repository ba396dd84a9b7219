import { describe, expect, test } from "bun:test";
import { JobRegistry } from "../../src/domain/job-registry.ts";
import { JOB_PIPELINE, simulateJob, type AiAnalysis } from "../../src/domain/job-simulator.ts";
import type { PublishItem } from "../../src/engine/types.ts";
import { Deadline } from "../../src/resilience/index.ts";

describe("JobRegistry", () => {
  test("knows owners until the TTL, counts jobs in flight, sweeps expired ones", () => {
    let now = 1000;
    const jobs = new JobRegistry({ ttlMs: 100, now: () => now });
    jobs.register({ id: "j1", owner: "alice", simulated: false });
    jobs.register({ id: "j2", owner: "bob", simulated: true });
    expect(jobs.ownerOf("j1")).toBe("alice");
    expect(jobs.ownerOf("nope")).toBeNull();
    expect(jobs.inFlight()).toBe(2);
    jobs.finish("j2");
    expect(jobs.inFlight()).toBe(1);
    expect(jobs.ownerOf("j2")).toBe("bob"); // a finished job can still be replayed by its owner
    expect(() => jobs.register({ id: "j1", owner: "eve", simulated: false })).toThrow(RangeError);
    now += 100;
    expect(jobs.ownerOf("j1")).toBeNull();
    expect(jobs.sweep()).toBe(1);
    expect(jobs.size).toBe(0);
  });
});

describe("JobRegistry with shared records", () => {
  test("another node (or a restarted one) learns the owner from the records", async () => {
    const shared = new Map<string, string>();
    const records = { putRecord: async (k: string, v: string) => void shared.set(k, v), getRecord: async (k: string) => shared.get(k) ?? null };
    const nodeA = new JobRegistry({ records });
    await nodeA.register({ id: "j9", owner: "alice", simulated: false });
    expect(shared.get("job:j9")).toBe("alice");
    const nodeB = new JobRegistry({ records });
    expect(await nodeB.ownerOf("j9")).toBe("alice");
    expect(await nodeB.ownerOf("unknown")).toBeNull();
  });
});

describe("simulateJob", () => {
  const run = async (analyze: (deadline: Deadline) => Promise<AiAnalysis>, deadline?: Deadline) => {
    const published: PublishItem[] = [];
    const slept: number[] = [];
    const result = simulateJob({
      job: "j1",
      owner: "alice",
      speed: 10,
      analyze,
      deadline,
      sleep: async (ms) => void slept.push(ms),
      publish: async (items) => void published.push(...items),
    });
    return { result, published, slept };
  };

  test("publishes each stage (critical), coalesced progress up to 100, then the result", async () => {
    const { result, published, slept } = await run(async () => ({ fallback: false, source: "demo", insights: [] }));
    expect(await result).toMatchObject({ job: "j1", owner: "alice", analysis: { fallback: false } });
    const stages = published.filter((i) => i.event === "job_stage");
    expect(stages.map((i) => JSON.parse(i.dataJson).stage)).toEqual(JOB_PIPELINE.map((s) => s.stage));
    expect(stages.every((i) => i.critical && i.channel === "job:j1")).toBe(true);
    const progress = published.filter((i) => i.event === "job_progress");
    expect(progress.every((i) => i.coalesce === "progress" && !i.critical)).toBe(true);
    expect(JSON.parse(progress.at(-1)!.dataJson)).toEqual({ percent: 100, stage: "insights_ready" });
    expect(published.at(-1)).toMatchObject({ event: "job_completed", critical: true });
    // The pipeline's ~12 s, divided by the speed.
    expect(Math.round(slept.reduce((a, b) => a + b, 0))).toBe(1200);
  });

  test("the AI stage gets a budget of at most 15 s, nested in the job's", async () => {
    let budget = 0;
    const { result } = await run(async (deadline) => {
      budget = deadline.budgetMs;
      return { fallback: true, reason: "unreachable" };
    });
    expect(await result).toMatchObject({ analysis: { fallback: true, reason: "unreachable" } });
    expect(budget).toBe(15_000);
    await (await run(async (deadline) => ((budget = deadline.budgetMs), { fallback: true, reason: "x" }), Deadline.after(5_000))).result;
    expect(budget).toBeLessThanOrEqual(5_000);
  });

  test("a failing stage ends the job with job_failed naming the stage", async () => {
    const published: PublishItem[] = [];
    let calls = 0;
    const result = simulateJob({
      job: "j2",
      owner: "alice",
      speed: 1000,
      analyze: async () => ({ fallback: false, source: "demo", insights: null }),
      sleep: async () => {},
      publish: async (items) => {
        if (++calls === 3) throw new Error("store down");
        published.push(...items);
      },
    });
    await expect(result).rejects.toThrow("store down");
    expect(published.at(-1)).toMatchObject({ event: "job_failed", critical: true });
    expect(JSON.parse(published.at(-1)!.dataJson)).toEqual({ job: "j2", stage: "uploading", reason: "store down" });
  });
});
