/**
 * The job simulator (`POST /v1/jobs` with `simulate: true`): plays the seeds' data-analysis
 * pipeline on `job:<id>` — a critical `job_stage` per stage, `job_progress` (coalesced: latest wins)
 * a few times per stage, then a critical `job_completed` or `job_failed`. Its `ai_analysis` stage
 * asks the agent backend, under the job's deadline, and falls back to a marked result when the
 * backend is down, so a dead agent never fails a job.
 */
import type { PublishItem } from "../engine/types.ts";
import { Deadline } from "../resilience/index.ts";

/**
 * The pipeline at speed 1 (~12 s).
 *
 * @example
 * JOB_PIPELINE.map((s) => s.stage) // ["uploading", "encoding_detection", …, "insights_ready"]
 */
export const JOB_PIPELINE = [
  { stage: "uploading", ms: 1000 },
  { stage: "encoding_detection", ms: 1000 },
  { stage: "csv_parsing", ms: 2000 },
  { stage: "data_quality_analysis", ms: 2000 },
  { stage: "column_labeling", ms: 1000 },
  { stage: "ai_analysis", ms: 3000 },
  { stage: "sweetviz_report", ms: 1000 },
  { stage: "insights_ready", ms: 1000 },
] as const;

export type JobStage = (typeof JOB_PIPELINE)[number]["stage"];

/** What `ai_analysis` produced: the backend's answer, or a fallback that says why. */
export type AiAnalysis = { fallback: false; source: "agent" | "demo"; insights: unknown } | { fallback: true; reason: string };

/** What a simulated job needs; publishing, the AI call and time are passed in. */
export interface SimulateJobOptions {
  job: string;
  owner: string;
  publish: (items: PublishItem[]) => Promise<unknown>;
  /** Divides every stage's duration (`config.jobs.simulatorSpeed`). */
  speed: number;
  /** The `ai_analysis` call, given the deadline it must finish by (throws when the agent is down). */
  analyze: (deadline: Deadline) => Promise<AiAnalysis>;
  /** The AI stage's budget; nested under `deadline`, the shorter wins. @default 15_000 */
  aiBudgetMs?: number;
  /** The whole job's deadline. @default none */
  deadline?: Deadline;
  /** Progress events per second of stage time (at speed 1). @default 2 */
  ticksPerSecond?: number;
  signal?: AbortSignal;
  /** @default Bun.sleep */
  sleep?: (ms: number) => Promise<void>;
  /** @default Date.now */
  now?: () => number;
}

/**
 * The job stopped because the server is stopping; nothing more was published.
 *
 * @example
 * simulateJob(options).catch((error) => { if (!(error instanceof JobAbortedError)) log.warn("job failed"); });
 */
export class JobAbortedError extends Error {
  override readonly name = "JobAbortedError";
  constructor(readonly job: string) {
    super(`job ${job} was aborted`);
  }
}

const TOTAL_MS = JOB_PIPELINE.reduce((sum, s) => sum + s.ms, 0);

/**
 * Runs one simulated job to its terminal event and resolves with the published result.
 *
 * @example
 * const result = await simulateJob({ job: "j1", owner: "alice", publish: ctx.publish, speed: 1, analyze: () => callAgent() });
 */
export async function simulateJob(options: SimulateJobOptions): Promise<Record<string, unknown>> {
  const { job, owner, publish, speed, analyze, signal } = options;
  if (!(speed > 0)) throw new RangeError(`Cannot simulate job ${job}: speed must be > 0, got ${speed}`);
  const sleep = options.sleep ?? ((ms: number) => Bun.sleep(ms));
  const ticksPerSecond = options.ticksPerSecond ?? 2;
  const deadline = options.deadline ?? Deadline.after(Infinity);
  const channel = `job:${job}`;
  const emit = (event: string, data: unknown, extra: Partial<PublishItem> = {}) => {
    if (signal?.aborted) throw new JobAbortedError(job);
    return publish([{ channel, event, dataJson: JSON.stringify(data), critical: false, ...extra }]);
  };
  const now = options.now ?? Date.now;
  const started = now();
  let doneMs = 0;
  let current: JobStage = JOB_PIPELINE[0].stage;
  let ai: AiAnalysis | undefined;
  try {
    for (const [index, { stage, ms }] of JOB_PIPELINE.entries()) {
      current = stage;
      await emit("job_stage", { stage, index, of: JOB_PIPELINE.length }, { critical: true });
      const pending = stage === "ai_analysis" ? analyze(deadline.child(options.aiBudgetMs ?? 15_000)) : undefined;
      const ticks = Math.max(1, Math.round((ms / 1000) * ticksPerSecond));
      for (let t = 1; t <= ticks; t++) {
        await sleep(ms / ticks / speed);
        const percent = Math.round((100 * (doneMs + (ms * t) / ticks)) / TOTAL_MS);
        await emit("job_progress", { percent, stage }, { coalesce: "progress" });
      }
      if (pending) ai = await pending;
      doneMs += ms;
    }
    const result = { job, owner, rows: 12_480, columns: 23, qualityScore: 0.94, analysis: ai, durationMs: now() - started };
    await emit("job_completed", result, { critical: true });
    return result;
  } catch (error) {
    if (error instanceof JobAbortedError || signal?.aborted) throw new JobAbortedError(job);
    await emit("job_failed", { job, stage: current, reason: (error as Error).message ?? "failed" }, { critical: true }).catch(() => {});
    throw error;
  }
}
