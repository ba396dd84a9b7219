/**
 * The HTTP client for the agent backend (`config.agent.url`): one POST of `{user, method, data}`
 * per call, under a deadline and through the "agent" circuit breaker, so a backend that hangs or
 * fails costs callers a quick, coded error instead of a pile of waiting requests. Used by `rpc`
 * frames and by the job simulator's `ai_analysis` stage.
 */
import { BreakerOpenError, CircuitBreaker, DeadlineExceededError, type Deadline } from "../resilience/index.ts";

/** Why the backend could not answer: its breaker is open, it is unreachable, or it failed (5xx, bad body). */
export type AgentUnavailableReason = "breaker_open" | "unreachable" | "server_error" | "bad_response";

/**
 * The backend is down or failing; retry later. `retryAfterMs` is set when the breaker is open.
 *
 * @example
 * if (error instanceof AgentUnavailableError) return { fallback: true, reason: error.reason };
 */
export class AgentUnavailableError extends Error {
  override readonly name = "AgentUnavailableError";
  constructor(
    readonly reason: AgentUnavailableReason,
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/**
 * The backend did not answer within the deadline.
 *
 * @example
 * if (error instanceof AgentTimeoutError) log.warn("agent slow", { budgetMs: error.budgetMs });
 */
export class AgentTimeoutError extends Error {
  override readonly name = "AgentTimeoutError";
  constructor(readonly budgetMs: number) {
    super(`the agent backend did not answer within ${budgetMs} ms`);
  }
}

/**
 * The backend answered with a 4xx: it is healthy, the call was refused (not a breaker failure).
 *
 * @example
 * if (error instanceof AgentRejectedError && error.status === 404) throw new RpcError("not_found", error.message);
 */
export class AgentRejectedError extends Error {
  override readonly name = "AgentRejectedError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** One call to the backend. */
export interface AgentRequest {
  user: string;
  method: string;
  data: unknown;
}

/** Options for {@linkcode AgentBackend}. */
export interface AgentBackendOptions {
  url: string;
  /** Counts timeouts, unreachable and 5xx as failures; 4xx answers pass through uncounted. */
  breaker: CircuitBreaker;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/**
 * Calls the agent backend.
 *
 * @example
 * const breaker = new CircuitBreaker({ name: "agent", isFailure: isAgentFailure });
 * const backend = new AgentBackend({ url: "http://agent:9000/rpc", breaker });
 * const answer = await backend.call({ user: "alice", method: "agent.run", data: {} }, Deadline.after(15_000));
 */
export class AgentBackend {
  readonly #url: string;
  readonly #breaker: CircuitBreaker;
  readonly #fetch: typeof fetch;

  constructor(options: AgentBackendOptions) {
    if (!URL.canParse(options.url)) throw new TypeError(`Cannot create agent backend: ${JSON.stringify(options.url)} is not a URL`);
    this.#url = options.url;
    this.#breaker = options.breaker;
    this.#fetch = options.fetch ?? fetch;
  }

  /**
   * The readiness check (optional: a node without its agent backend still delivers events; rpc
   * callers get `unavailable`): rejects while the breaker is open, so `/ready` says what rpc
   * callers get now. It sends nothing: the next real call is the breaker's half-open probe, and a
   * backend with no health route of its own is not asked to grow one.
   *
   * @throws {AgentUnavailableError} `breaker_open`, with `retryAfterMs`.
   * @example
   * checks.push({ name: "agent", timeoutMs: 1_000, required: false, run: () => backend.check() });
   */
  async check(): Promise<void> {
    const state = this.#breaker.state;
    if (state.kind === "open") {
      throw new AgentUnavailableError("breaker_open", `the agent breaker is open (${Math.ceil(state.remainingCooldownMs / 1000)} s of cooldown left)`, undefined, state.remainingCooldownMs);
    }
  }

  /**
   * POSTs `request` and resolves with the JSON answer (`null` for an empty body).
   * `signal` (the caller's own, e.g. the rpc frame's) aborts too; the earlier of the two wins.
   *
   * @throws {AgentTimeoutError} the deadline (or `signal`) ran out.
   * @throws {AgentUnavailableError} breaker open, connection refused, 5xx or a body that is not JSON.
   * @throws {AgentRejectedError} a 4xx answer.
   * @example
   * await backend.call({ user: "alice", method: "jobs.analyze", data: { job } }, deadline.child(15_000));
   */
  async call(request: AgentRequest, deadline: Deadline, signal?: AbortSignal): Promise<unknown> {
    try {
      return await this.#breaker.execute(() =>
        deadline.run(async (deadlineSignal) => {
          const res = await this.#fetch(this.#url, {
            method: "POST",
            headers: { "content-type": "application/json", accept: "application/json" },
            body: JSON.stringify(request),
            signal: signal ? AbortSignal.any([deadlineSignal, signal]) : deadlineSignal,
          });
          const text = await res.text();
          if (res.status >= 500) throw new AgentUnavailableError("server_error", `the agent backend answered ${res.status}`, res.status);
          if (!res.ok) throw new AgentRejectedError(res.status, messageOf(text) ?? `the agent backend answered ${res.status}`);
          if (text.trim() === "") return null;
          try {
            return JSON.parse(text) as unknown;
          } catch {
            throw new AgentUnavailableError("bad_response", "the agent backend answered with a body that is not JSON", res.status);
          }
        }),
      );
    } catch (error) {
      throw classify(error, deadline.budgetMs);
    }
  }
}

/**
 * The breaker's `isFailure`: a 4xx means the backend is up, so it does not count.
 *
 * @example
 * new CircuitBreaker({ name: "agent", isFailure: isAgentFailure });
 */
export function isAgentFailure(error: unknown): boolean {
  return !(error instanceof AgentRejectedError);
}

function classify(error: unknown, budgetMs: number): Error {
  if (error instanceof AgentRejectedError || error instanceof AgentUnavailableError || error instanceof AgentTimeoutError) return error;
  if (error instanceof BreakerOpenError) {
    return new AgentUnavailableError("breaker_open", "the agent backend is unavailable (circuit open)", undefined, error.remainingCooldownMs);
  }
  if (error instanceof DeadlineExceededError) return new AgentTimeoutError(error.budgetMs);
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) return new AgentTimeoutError(budgetMs);
  return new AgentUnavailableError("unreachable", "the agent backend is unreachable");
}

/** A backend's `{"message"}` (or `{"error"}`), trimmed: never a whole body in an error frame. */
function messageOf(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as { message?: unknown; error?: unknown };
    const message = typeof body.message === "string" ? body.message : typeof body.error === "string" ? body.error : undefined;
    return message?.slice(0, 200);
  } catch {
    return undefined;
  }
}
