/**
 * Log lines for refused upgrades, sampled: a flood of refusals (a reconnect storm with expired
 * tokens, a scanner) must not become a flood of log lines. At most `perSecond` lines per second;
 * the next line logged says how many were left out since the last one (`suppressed`). No timer:
 * the count rides on the next line.
 */
import type { Logger } from "../telemetry/index.ts";

/** What a refusal line carries. Never the token: only why, the status, the client address and the user when known. */
export interface RefusalFields {
  reason: string;
  status: number;
  ip: string;
  user?: string;
}

/** Options of {@linkcode refusalLog}. */
export interface RefusalLogOptions {
  log: Pick<Logger, "info">;
  now: () => number;
  /** Lines per second at most. @default 10 */
  perSecond?: number;
}

/**
 * @example
 * const refused = refusalLog({ log, now: Date.now });
 * refused({ reason: "token_expired", status: 401, ip: "203.0.113.7" });
 * // {"level":"info","msg":"upgrade refused","reason":"token_expired","status":401,"ip":"203.0.113.7"}
 */
export function refusalLog(options: RefusalLogOptions): (fields: RefusalFields) => void {
  const perSecond = options.perSecond ?? 10;
  let windowStart = -Infinity;
  let inWindow = 0;
  let suppressed = 0;
  return (fields) => {
    const now = options.now();
    if (now - windowStart >= 1000) {
      windowStart = now;
      inWindow = 0;
    }
    if (inWindow >= perSecond) {
      suppressed++;
      return;
    }
    inWindow++;
    options.log.info("upgrade refused", suppressed > 0 ? { ...fields, suppressed } : { ...fields });
    suppressed = 0;
  };
}
