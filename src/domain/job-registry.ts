/**
 * Which user owns which job, for the `job:<id>` permission (PROTOCOL.md §4), for as long as the
 * job's critical history lives, so the owner can still replay a finished job's stages. Owners are
 * written through to the engine's records (`records`), durable and shared by every node: a job
 * created on one node can be joined on another, and after a restart. The local map is this node's
 * cache and the source of the in-flight gauge.
 */
import type { RecordStore } from "../engine/types.ts";

/** One registered job. */
export interface JobRecord {
  id: string;
  owner: string;
  createdAt: number;
  /** When a terminal event (`job_completed`, `job_failed`) was stored; undefined while running. */
  finishedAt?: number;
  simulated: boolean;
}

/** Options for {@linkcode JobRegistry}. */
export interface JobRegistryOptions {
  /** How long a job stays known after it was created. @default 24 h */
  ttlMs?: number;
  /** The clock, in ms. @default Date.now */
  now?: () => number;
  /** Shared, durable owners; without it the registry is this node's memory only. */
  records?: RecordStore;
}

/**
 * Registered jobs, expiring `ttlMs` after creation (checked on read and by {@linkcode sweep}).
 *
 * @example
 * const jobs = new JobRegistry({ ttlMs: 86_400_000 });
 * jobs.register({ id: "j1", owner: "alice", simulated: false });
 * jobs.ownerOf("j1") // "alice"
 */
export class JobRegistry {
  readonly #jobs = new Map<string, JobRecord>();
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #records: RecordStore | undefined;

  constructor(options: JobRegistryOptions = {}) {
    const { ttlMs = 24 * 60 * 60 * 1000, now = Date.now, records } = options;
    this.#records = records;
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`Cannot create job registry: ttlMs must be finite and > 0, got ${ttlMs}`);
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  /**
   * Records a new job; resolves once its owner is stored where every node can read it.
   *
   * @throws {RangeError} (synchronously) when the id is already registered.
   * @example
   * await jobs.register({ id: crypto.randomUUID(), owner: "alice", simulated: true });
   */
  register(job: { id: string; owner: string; simulated: boolean }): Promise<JobRecord> {
    if (this.#live(job.id)) throw new RangeError(`Cannot register job ${job.id}: it exists`);
    const record: JobRecord = { ...job, createdAt: this.#now() };
    this.#jobs.set(job.id, record);
    if (!this.#records) return Promise.resolve(record);
    return this.#records.putRecord(`job:${job.id}`, job.owner, this.#ttlMs).then(() => record);
  }

  /**
   * The owner of a known job, or null (unknown or expired): from this node's cache, else from the
   * shared records (a job created on another node, or before a restart).
   *
   * @example
   * await jobs.ownerOf("nope") // null
   */
  ownerOf(id: string): string | null | Promise<string | null> {
    const local = this.#live(id)?.owner;
    if (local !== undefined || !this.#records) return local ?? null;
    return this.#records.getRecord(`job:${id}`);
  }

  /**
   * Marks a job finished (idempotent; unknown ids are ignored: a backend may finish a job that
   * another node registered).
   *
   * @example
   * jobs.finish("j1");
   */
  finish(id: string): void {
    const job = this.#live(id);
    if (job && job.finishedAt === undefined) job.finishedAt = this.#now();
  }

  /**
   * Jobs registered and not finished: the `courier_jobs_in_flight` gauge.
   *
   * @example
   * jobs.inFlight() // 3
   */
  inFlight(): number {
    let n = 0;
    const now = this.#now();
    for (const job of this.#jobs.values()) if (job.finishedAt === undefined && now - job.createdAt < this.#ttlMs) n++;
    return n;
  }

  /**
   * Drops expired jobs; call it periodically.
   *
   * @example
   * setInterval(() => jobs.sweep(), 60_000);
   */
  sweep(): number {
    const cutoff = this.#now() - this.#ttlMs;
    let dropped = 0;
    for (const [id, job] of this.#jobs) {
      if (job.createdAt <= cutoff) {
        this.#jobs.delete(id);
        dropped++;
      }
    }
    return dropped;
  }

  get size(): number {
    return this.#jobs.size;
  }

  #live(id: string): JobRecord | undefined {
    const job = this.#jobs.get(id);
    if (!job) return undefined;
    if (this.#now() - job.createdAt >= this.#ttlMs) {
      this.#jobs.delete(id);
      return undefined;
    }
    return job;
  }
}
