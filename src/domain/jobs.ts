/**
 * Jobs (PROTOCOL.md §2, `POST /v1/jobs`): registers a job with its owner, so `job:<id>` lets only
 * the owner in, and optionally runs the simulator on it. Backends report real jobs' progress
 * themselves through the publish API on `job:<id>`; a stored `job_completed`/`job_failed` (whoever
 * published it) ends the job for the in-flight gauge.
 */
import { randomUUID } from "node:crypto";
import { JobBodySchema } from "../protocol/control.ts";
import type { PublishItem } from "../engine/types.ts";
import { Deadline } from "../resilience/index.ts";
import type { ExtensionContext } from "../server/extension.ts";
import { json, readJson, requireKey, validated } from "../server/http.ts";
import { JobRegistry } from "./job-registry.ts";
import { JobAbortedError, simulateJob, type AiAnalysis } from "./job-simulator.ts";

const BODY_LIMIT = 4 * 1024;
const TERMINAL = new Set(["job_completed", "job_failed"]);

/** What `create` answers: the job, its channel, and the channel's epoch for `since {offset: 0}`. */
export interface CreatedJob {
  job: string;
  channel: string;
  epoch: string;
}

/** Options for {@linkcode Jobs}. */
export interface JobsOptions {
  registry: JobRegistry;
  /** The `ai_analysis` stage; must not throw (it returns a fallback instead). */
  analyze: (request: { job: string; owner: string }, deadline: Deadline) => Promise<AiAnalysis>;
  /** A simulated job's whole budget (stages at the configured speed, plus the AI call). @default 5 min */
  jobBudgetMs?: number;
  /** @default Bun.sleep */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Creates jobs and runs simulated ones.
 *
 * @example
 * const jobs = new Jobs(ctx, { registry: new JobRegistry(), analyze: () => Promise.resolve({ fallback: true, reason: "none" }) });
 * const { job, epoch } = await jobs.create("alice", true);
 */
export class Jobs {
  readonly #ctx: ExtensionContext;
  readonly #registry: JobRegistry;
  readonly #options: JobsOptions;
  readonly #running = new Map<string, { owner: string; controller: AbortController }>();

  constructor(ctx: ExtensionContext, options: JobsOptions) {
    this.#ctx = ctx;
    this.#registry = options.registry;
    this.#options = options;
  }

  /** Simulations running on this node. */
  get running(): number {
    return this.#running.size;
  }

  /**
   * Simulations running on this node for `owner` (rpc callers are capped on it).
   *
   * @example
   * if (jobs.runningFor(user) >= 3) throw new RpcError("limit_exceeded", "too many simulated jobs");
   */
  runningFor(owner: string): number {
    let n = 0;
    for (const run of this.#running.values()) if (run.owner === owner) n++;
    return n;
  }

  /**
   * Registers a job for `owner` (and starts the simulator when `simulate`).
   *
   * @throws {StoreUnavailableError} when the channel's epoch cannot be read.
   * @example
   * const { job } = await jobs.create("alice", false); // the backend publishes on job:<job>
   */
  async create(owner: string, simulate: boolean): Promise<CreatedJob> {
    const job = randomUUID();
    const channel = `job:${job}`;
    // Registered before answering: the owner may subscribe the moment it learns the id.
    await this.#registry.register({ id: job, owner, simulated: simulate });
    // Counted as running before the first await, so concurrent callers see it in `runningFor`.
    const controller = new AbortController();
    if (simulate) this.#running.set(job, { owner, controller });
    let epoch: string;
    try {
      ({ epoch } = await this.#ctx.broker.position(channel));
    } catch (error) {
      this.#running.delete(job);
      this.#registry.finish(job);
      throw error;
    }
    if (simulate) this.#simulate(job, owner, controller);
    return { job, channel, epoch };
  }

  /**
   * Ends jobs whose terminal event was stored (from the simulator or a backend).
   *
   * @example
   * // as an Extension: published: (items) => jobs.observe(items)
   */
  observe(items: readonly PublishItem[]): void {
    for (const item of items) {
      if (TERMINAL.has(item.event) && item.channel.startsWith("job:")) this.#registry.finish(item.channel.slice(4));
    }
  }

  /**
   * Stops every simulation: nothing is published after this.
   *
   * @example
   * extension.stop = () => jobs.stop();
   */
  stop(): void {
    for (const { controller } of this.#running.values()) controller.abort();
    this.#running.clear();
  }

  /**
   * `POST /v1/jobs`: API key; body `{"owner","simulate"?}` → 201 `{"job","channel","epoch"}`.
   * Subscribe to `channel` with `since: {offset: 0, epoch}` to see every event from the first stage.
   */
  route = async (req: Request): Promise<Response> => {
    const ctx = this.#ctx;
    requireKey(req, ctx.config.auth.apiKey);
    const body = validated(JobBodySchema, await readJson(req, BODY_LIMIT, ctx.config.limits.maxJsonDepth));
    return json(await this.create(body.owner, body.simulate === true), 201);
  };

  #simulate(job: string, owner: string, controller: AbortController): void {
    const { config, log } = this.#ctx;
    simulateJob({
      job,
      owner,
      publish: (items) => this.#ctx.publisher.publish(items),
      speed: config.jobs.simulatorSpeed,
      analyze: (deadline) => this.#options.analyze({ job, owner }, deadline),
      deadline: Deadline.after(this.#options.jobBudgetMs ?? 5 * 60_000),
      signal: controller.signal,
      sleep: this.#options.sleep,
      now: this.#ctx.now,
    })
      .catch((error: unknown) => {
        if (!(error instanceof JobAbortedError)) log.warn("simulated job failed", { job, error: (error as Error).message });
      })
      .finally(() => {
        this.#running.delete(job);
        // A job whose terminal event could not be stored is over all the same.
        this.#registry.finish(job);
      });
  }
}
