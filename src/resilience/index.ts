/**
 * Resilience building blocks: a circuit breaker, deadlines that never stack, and readiness checks
 * bounded by one budget. Pure: clocks are injected, nothing here starts a background timer.
 *
 * @example
 * import { CircuitBreaker, Deadline, runChecks } from "../resilience/index.ts";
 * const breaker = new CircuitBreaker({ name: "agent" });
 * const answer = await breaker.execute(() => Deadline.after(15_000).run((signal) => callAgent(req, signal)));
 */
export {
  BreakerOpenError,
  CIRCUIT_STATE_VALUE,
  CircuitBreaker,
  retryAfterS,
  type BreakerSnapshot,
  type CircuitBreakerOptions,
  type CircuitState,
  type CircuitStateName,
} from "./circuit-breaker.ts";
export { Deadline, DeadlineExceededError, withTimeout } from "./deadline.ts";
export {
  ReadinessGate,
  runChecks,
  type CheckResult,
  type ReadinessCheck,
  type ReadinessPhase,
  type ReadinessResult,
  type ReadinessStatus,
  type RunChecksOptions,
} from "./readiness.ts";
