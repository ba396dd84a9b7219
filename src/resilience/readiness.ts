/**
 * Readiness: dependency checks run in parallel under one total budget, so `/ready` answers in
 * bounded time even when a dependency hangs (PROTOCOL §2), and the gate the upgrade path asks
 * before accepting a WebSocket (PROTOCOL §3: 503 while not ready or draining).
 */
import { Deadline, DeadlineExceededError } from "./deadline.ts";

/** One dependency check. `run` should heed `signal`; a check that does not is abandoned at its timeout. */
export interface ReadinessCheck {
  /** Key in the result, e.g. `"store"`, `"redis"`. Unique within one call. */
  name: string;
  /** This check's own limit; the total budget may cut it shorter. */
  timeoutMs: number;
  /** A failing required check makes the node `not_ready`; an optional one only `degraded`. */
  required: boolean;
  /** Resolves when the dependency is healthy; rejects (or never settles) when it is not. */
  run(signal: AbortSignal): Promise<void>;
}

/** The outcome of one check, as listed in the `/ready` body. */
export interface CheckResult {
  ok: boolean;
  /** How long the check took, rounded to whole ms. */
  ms: number;
  required: boolean;
  /** Why it failed: `"timeout"`, or the error's message. */
  error?: string;
}

/** `ready`: all checks passed; `degraded`: only optional ones failed; `not_ready`: a required one failed. */
export type ReadinessStatus = "ready" | "degraded" | "not_ready";

/** What {@linkcode runChecks} resolves to. */
export interface ReadinessResult {
  status: ReadinessStatus;
  checks: Record<string, CheckResult>;
}

/** Options for {@linkcode runChecks}. */
export interface RunChecksOptions {
  /** The whole call resolves within this. */
  budgetMs: number;
  /** The clock, in ms. @default performance.now */
  now?: () => number;
}

/**
 * Runs every check in parallel, each under min(its timeout, the budget), and always resolves,
 * within `budgetMs` plus timer latency: a failing or hanging check is a result, never an exception.
 *
 * @throws {TypeError} on duplicate check names; {@linkcode RangeError} on a bad budget or timeout.
 * @example
 * const result = await runChecks(
 *   [
 *     { name: "store", timeoutMs: 3_000, required: true, run: (signal) => store.ping(signal) },
 *     { name: "otlp", timeoutMs: 1_000, required: false, run: (signal) => exporter.ping(signal) },
 *   ],
 *   { budgetMs: config.resilience.readinessBudgetMs },
 * );
 * return Response.json(result, { status: result.status === "not_ready" ? 503 : 200 });
 */
export async function runChecks(checks: readonly ReadinessCheck[], options: RunChecksOptions): Promise<ReadinessResult> {
  const { budgetMs, now = () => performance.now() } = options;
  const names = new Set<string>();
  for (const check of checks) {
    if (names.has(check.name)) throw new TypeError(`Cannot run readiness checks: duplicate name "${check.name}"`);
    names.add(check.name);
  }
  // Validates budgetMs and every timeoutMs before anything starts.
  const deadline = Deadline.after(budgetMs, now);
  const children = checks.map((check) => deadline.child(check.timeoutMs));

  const outcomes = await Promise.all(
    checks.map(async (check, i): Promise<[string, CheckResult]> => {
      const started = now();
      try {
        await children[i]!.run((signal) => check.run(signal));
        return [check.name, { ok: true, ms: Math.round(now() - started), required: check.required }];
      } catch (error) {
        return [check.name, { ok: false, ms: Math.round(now() - started), required: check.required, error: describe(error) }];
      }
    }),
  );

  const results: Record<string, CheckResult> = Object.fromEntries(outcomes);
  let status: ReadinessStatus = "ready";
  for (const result of Object.values(results)) {
    if (result.ok) continue;
    if (result.required) {
      status = "not_ready";
      break;
    }
    status = "degraded";
  }
  return { status, checks: results };
}

function describe(error: unknown): string {
  if (error instanceof DeadlineExceededError) return "timeout";
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** Where a node is in its life: only `ready` accepts new connections. */
export type ReadinessPhase = "starting" | "ready" | "draining";

/**
 * The node's lifecycle phase plus the last readiness result: the upgrade path asks
 * {@linkcode ReadinessGate.accepting} before every upgrade. Draining is final.
 *
 * @example
 * const gate = new ReadinessGate();
 * gate.record(await runChecks(checks, { budgetMs: 5_000 }));
 * gate.markReady();
 * // in fetch(): if (!gate.accepting()) return unavailable(retryAfterS);
 * process.on("SIGTERM", () => gate.markDraining());
 */
export class ReadinessGate {
  #phase: ReadinessPhase = "starting";
  #last: ReadinessResult | undefined;

  /**
   * The current phase.
   *
   * @example
   * new ReadinessGate().phase // "starting"
   */
  get phase(): ReadinessPhase {
    return this.#phase;
  }

  /**
   * The last recorded readiness result, if any.
   *
   * @example
   * gate.lastResult?.status // "ready"
   */
  get lastResult(): ReadinessResult | undefined {
    return this.#last;
  }

  /**
   * Whether a new connection may be accepted: ready, not draining, and the last checks did not
   * say `not_ready` (`degraded` still accepts: optional dependencies do not block clients).
   *
   * @example
   * if (!gate.accepting()) return new Response(null, { status: 503, headers: { "Retry-After": "2" } });
   */
  accepting(): boolean {
    return this.#phase === "ready" && this.#last?.status !== "not_ready";
  }

  /**
   * Stores the latest check result (from `/ready` or a periodic probe).
   *
   * @example
   * gate.record(await runChecks(checks, { budgetMs }));
   */
  record(result: ReadinessResult): void {
    this.#last = result;
  }

  /**
   * Startup finished: begin accepting connections. Idempotent while ready.
   *
   * @throws {TypeError} once draining: a draining node never becomes ready again.
   * @example
   * server.listen(); gate.markReady();
   */
  markReady(): void {
    if (this.#phase === "draining") throw new TypeError("Cannot mark ready: the node is draining");
    this.#phase = "ready";
  }

  /**
   * Shutdown started: refuse new connections from now on. Idempotent.
   *
   * @example
   * process.on("SIGTERM", () => gate.markDraining());
   */
  markDraining(): void {
    this.#phase = "draining";
  }
}
