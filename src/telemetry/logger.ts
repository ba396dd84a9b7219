/**
 * Structured logging: one JSON line per event on stdout, never a token or a key (PROTOCOL §1).
 */
import { redact, redactString } from "./redact.ts";

export const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
type EventLevel = Exclude<LogLevel, "silent">;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: Infinity };

/** Reserved keys: fields with these names are dropped so a line always starts with the real ones. */
const CORE_KEYS = new Set(["ts", "level", "msg"]);

export type LogFields = Record<string, unknown>;

export interface Logger {
  /** The least severe level written. */
  readonly level: LogLevel;
  /** Whether `level` would be written: check it before building costly fields on hot paths. */
  enabled(level: EventLevel): boolean;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line (a call's own fields win over them). */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** Least severe level written; `silent` writes nothing. */
  level: LogLevel;
  /** Receives each line without its newline. Default: stdout. */
  sink?: (line: string) => void;
  /** Clock in ms since the epoch. Default `Date.now`. */
  now?: () => number;
}

/**
 * Creates a JSON-lines logger. Every line is `{"ts","level","msg",...fields}`; fields go through
 * {@link redact}, so sensitive keys, JWTs, Bearer credentials and Error stacks never reach the sink.
 * Logging never throws: a field that cannot be serialized or a failing sink loses the line, not the
 * caller's work.
 *
 * @example
 * ```ts
 * const log = createLogger({ level: config.log.level });
 * const connLog = log.child({ conn: id, user: "u1" });
 * connLog.info("subscribed", { channel: "job:42" });
 * // {"ts":"2026-…Z","level":"info","msg":"subscribed","conn":"c1","user":"u1","channel":"job:42"}
 * log.error("publish failed", { err, authorization: req.headers.get("authorization") });
 * // …"err":{"name":"Error","message":"…"},"authorization":"[redacted]"}
 * ```
 */
export function createLogger(options: LoggerOptions): Logger {
  const sink = options.sink ?? ((line: string) => void process.stdout.write(line + "\n"));
  return makeLogger(options.level, sink, options.now ?? Date.now, {});
}

function makeLogger(level: LogLevel, sink: (line: string) => void, now: () => number, bound: LogFields): Logger {
  const threshold = RANK[level];
  const write = (eventLevel: EventLevel, msg: string, fields?: LogFields) => {
    if (RANK[eventLevel] < threshold) return;
    const line: LogFields = { ts: new Date(now()).toISOString(), level: eventLevel, msg: redactString(String(msg)) };
    try {
      const clean = redact(fields ? { ...bound, ...fields } : bound) as LogFields;
      for (const key in clean) if (!CORE_KEYS.has(key)) line[key] = clean[key];
    } catch {
      // A throwing getter or a hostile Proxy: keep the event, say what was lost.
      line.fieldsError = "fields could not be read";
    }
    try {
      sink(JSON.stringify(line));
    } catch {
      // A closed stdout (EPIPE) must not take the server down with it.
    }
  };
  return {
    level,
    enabled: (eventLevel) => RANK[eventLevel] >= threshold,
    debug: (msg, fields) => write("debug", msg, fields),
    info: (msg, fields) => write("info", msg, fields),
    warn: (msg, fields) => write("warn", msg, fields),
    error: (msg, fields) => write("error", msg, fields),
    child: (fields) => makeLogger(level, sink, now, { ...bound, ...fields }),
  };
}
