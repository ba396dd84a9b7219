/**
 * The agent behind `rpc` frames (PROTOCOL.md §4). With `config.agent.url`: every call is proxied
 * to the backend under the frame's deadline and the "agent" breaker — a timeout answers `timeout`,
 * an open breaker, a 5xx or a refused connection `unavailable`. Without it: the built-in demo agent
 * answers `agent.run`, and any other method is `not_found`.
 */
import { randomUUID } from "node:crypto";
import { ErrorCode } from "../protocol/codes.ts";
import { Deadline } from "../resilience/index.ts";
import { RpcError } from "../protocol/rpc-error.ts";
import type { RpcHandler } from "../server/extension.ts";
import { AgentBackend, AgentRejectedError, AgentTimeoutError, AgentUnavailableError } from "./agent-backend.ts";
import type { AgentRunTracker } from "./agent-tracker.ts";
import { runDemoAgent, type DemoRunOptions } from "./demo-agent.ts";
import type { AiAnalysis } from "./job-simulator.ts";
import type { PublishItem } from "../engine/types.ts";

/** Options for {@linkcode createAgentRpc}. */
export interface AgentRpcOptions {
  /** The backend, or null for the demo agent. */
  backend: AgentBackend | null;
  tracker: AgentRunTracker;
  publish: (items: PublishItem[]) => Promise<unknown>;
  /** Where the demo agent streams its answer (PROTOCOL §8). */
  streams: DemoRunOptions["streams"];
  isCritical: (event: string) => boolean;
  demoStepMs: number;
  /** Stops demo runs (server stop). */
  signal: AbortSignal;
  onDemoError?: (error: unknown, run: string) => void;
}

/**
 * The rpc handler for agent methods.
 *
 * @example
 * const rpc = createAgentRpc({ backend: null, tracker, publish: ctx.publish, streams: ctx.streams, isCritical, demoStepMs: 150, signal });
 * await rpc({ user: "alice", method: "agent.run", data: { prompt: "hi" }, signal, deadlineMs: 15_000 }) // { run: "…" }
 */
export function createAgentRpc(options: AgentRpcOptions): RpcHandler {
  const { backend, tracker } = options;
  return async ({ user, method, data, signal, deadlineMs }) => {
    if (backend) {
      let answer: unknown;
      try {
        answer = await backend.call({ user, method, data }, Deadline.after(deadlineMs), signal);
      } catch (error) {
        throw toRpcError(error);
      }
      // A backend run answered by id is tracked even if the backend never publishes agent_started.
      const run = (answer as { run?: unknown } | null)?.run;
      if (typeof run === "string" && run.length > 0 && run.length <= 128) tracker.start(`user:${user}`, run);
      return answer;
    }
    if (method !== "agent.run") throw new RpcError(ErrorCode.NotFound, `unknown method "${method.slice(0, 64)}"`);
    const run = randomUUID();
    const prompt = typeof (data as { prompt?: unknown } | null)?.prompt === "string" ? (data as { prompt: string }).prompt : "";
    // Tracked from the answer, so even a run whose first publish fails ends with agent_failed.
    tracker.start(`user:${user}`, run);
    runDemoAgent({ user, run, prompt, stepMs: options.demoStepMs, publish: options.publish, streams: options.streams, isCritical: options.isCritical, signal: options.signal }).catch((error: unknown) =>
      options.onDemoError?.(error, run),
    );
    return { run };
  };
}

/**
 * The job simulator's `ai_analysis` call: the backend's answer, the demo's when there is no
 * backend, and a marked fallback (`{fallback: true, reason}`) when the backend is down — never throws.
 *
 * @example
 * const analysis = await analyzeJob(backend, { job, owner }, deadline.child(15_000));
 */
export async function analyzeJob(backend: AgentBackend | null, request: { job: string; owner: string }, deadline: Deadline): Promise<AiAnalysis> {
  if (!backend) return { fallback: false, source: "demo", insights: ["3 columns have missing values", "revenue correlates with region"] };
  try {
    const insights = await backend.call({ user: request.owner, method: "jobs.analyze", data: { job: request.job } }, deadline);
    return { fallback: false, source: "agent", insights };
  } catch (error) {
    if (error instanceof AgentTimeoutError) return { fallback: true, reason: "timeout" };
    if (error instanceof AgentUnavailableError) return { fallback: true, reason: error.reason };
    if (error instanceof AgentRejectedError) return { fallback: true, reason: `rejected_${error.status}` };
    return { fallback: true, reason: "error" };
  }
}

const REJECTED_CODES: Record<number, ErrorCode> = { 400: ErrorCode.BadRequest, 401: ErrorCode.Forbidden, 403: ErrorCode.Forbidden, 404: ErrorCode.NotFound, 422: ErrorCode.BadRequest, 429: ErrorCode.RateLimited };

function toRpcError(error: unknown): RpcError {
  if (error instanceof AgentTimeoutError) return new RpcError(ErrorCode.Timeout, `the agent did not answer within ${error.budgetMs} ms`);
  if (error instanceof AgentUnavailableError) {
    return new RpcError(ErrorCode.Unavailable, error.reason === "breaker_open" ? "the agent is unavailable; retry later" : "the agent is unavailable");
  }
  if (error instanceof AgentRejectedError) return new RpcError(REJECTED_CODES[error.status] ?? ErrorCode.BadRequest, error.message);
  return new RpcError(ErrorCode.Internal, "the agent call failed");
}
