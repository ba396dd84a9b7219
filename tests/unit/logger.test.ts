import { describe, expect, test } from "bun:test";
import { createLogger, type LogLevel } from "../../src/telemetry/index.ts";

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
const JWT =
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1MSIsImV4cCI6MTc2NzMyMzQ0NX0.c2lnbmF0dXJlX2J5dGVzX2hlcmVfMTIzNDU2Nzg5MA";

function capture(level: LogLevel = "debug") {
  const lines: string[] = [];
  const log = createLogger({ level, sink: (line) => lines.push(line), now: () => T0 });
  return { log, lines, parsed: () => lines.map((line) => JSON.parse(line)) };
}

describe("createLogger", () => {
  test("writes one JSON line per event with ts, level, msg first, then fields", () => {
    const { log, lines } = capture();
    log.info("subscribed", { conn: "c1", channel: "job:42", n: 3 });
    expect(lines).toEqual([
      '{"ts":"2026-01-02T03:04:05.678Z","level":"info","msg":"subscribed","conn":"c1","channel":"job:42","n":3}',
    ]);
  });

  test("drops events below the level; silent writes nothing", () => {
    const warn = capture("warn");
    warn.log.debug("d");
    warn.log.info("i");
    warn.log.warn("w");
    warn.log.error("e");
    expect(warn.parsed().map((l) => l.level)).toEqual(["warn", "error"]);
    expect(warn.log.enabled("info")).toBe(false);
    expect(warn.log.enabled("error")).toBe(true);

    const silent = capture("silent");
    silent.log.error("e");
    expect(silent.lines).toEqual([]);
  });

  test("child loggers add their fields; the call's own fields win; core keys cannot be overridden", () => {
    const { log, parsed } = capture();
    const child = log.child({ conn: "c1", user: "u1" }).child({ channel: "a:b" });
    child.warn("slow", { user: "u2", level: "fake", msg: "fake", ts: "fake" });
    expect(parsed()).toEqual([
      { ts: "2026-01-02T03:04:05.678Z", level: "warn", msg: "slow", conn: "c1", user: "u2", channel: "a:b" },
    ]);
  });

  test("sensitive keys are redacted at any depth, whatever their value", () => {
    const { log, parsed } = capture();
    log.info("req", {
      token: "abc",
      headers: { Authorization: "Bearer abc", cookie: "sid=1", "x-api-key": "k" },
      auth: { jwtSecret: "s3cr3t-s3cr3t-s3cr3t", password: { nested: true }, apiKey: 1, admin_key: "a" },
      list: [{ refreshToken: "r" }],
      user: "u1",
    });
    expect(parsed()[0]).toMatchObject({
      token: "[redacted]",
      headers: { Authorization: "[redacted]", cookie: "[redacted]", "x-api-key": "[redacted]" },
      auth: { jwtSecret: "[redacted]", password: "[redacted]", apiKey: "[redacted]", admin_key: "[redacted]" },
      list: [{ refreshToken: "[redacted]" }],
      user: "u1",
    });
  });

  test("JWTs, Bearer credentials and token query parameters are cut out of any string, msg included", () => {
    const { log, lines } = capture();
    log.info(`upgrade with ${JWT}`, {
      url: `/v1/ws?token=${JWT}&session=s1`,
      header: "Bearer abcdef123456",
      query: "/v1/history?channel=a:b&api_key=zzz",
      note: "plain text stays",
    });
    const [line] = lines;
    expect(line).not.toContain("eyJ");
    expect(line).not.toContain("abcdef123456");
    expect(line).not.toContain("zzz");
    expect(JSON.parse(line!)).toMatchObject({
      msg: "upgrade with [redacted]",
      url: "/v1/ws?token=[redacted]&session=s1",
      header: "Bearer [redacted]",
      query: "/v1/history?channel=a:b&api_key=[redacted]",
      note: "plain text stays",
    });
  });

  test("errors are logged as name and message, without stack, with credentials cut", () => {
    const { log, lines, parsed } = capture();
    const err = Object.assign(new TypeError(`bad token ${JWT}`), { code: "unauthorized" });
    log.error("auth failed", { err });
    expect(lines[0]).not.toContain("stack");
    expect(parsed()[0].err).toEqual({ name: "TypeError", message: "bad token [redacted]", code: "unauthorized" });
  });

  test("cycles, depth, bigints and odd values never throw", () => {
    const { log, parsed } = capture();
    const cyclic: Record<string, unknown> = { name: "a" };
    cyclic.self = cyclic;
    const shared = { x: 1 };
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 20; i++) deep = { deep };
    log.info("odd", { cyclic, pair: [shared, shared], deep, big: 10n, nan: NaN, when: new Date(T0), fn: () => 1, bytes: new Uint8Array(4) });
    const [line] = parsed();
    expect(line.cyclic).toEqual({ name: "a", self: "[circular]" });
    expect(line.pair).toEqual([{ x: 1 }, { x: 1 }]);
    expect(JSON.stringify(line.deep)).toContain("[truncated]");
    expect(line).toMatchObject({ big: "10", nan: "NaN", when: "2026-01-02T03:04:05.678Z", bytes: "[4 bytes]" });
    expect("fn" in line).toBe(false);
  });

  test("a throwing sink does not throw into the caller", () => {
    const log = createLogger({
      level: "info",
      sink: () => {
        throw new Error("EPIPE");
      },
    });
    expect(() => log.info("x")).not.toThrow();
  });

  test("fields that throw when read keep the event and say so", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "info", sink: (line) => lines.push(line), now: () => T0 });
    const hostile = {
      get boom(): never {
        throw new Error("getter");
      },
    };
    log.info("still here", { hostile });
    expect(JSON.parse(lines[0]!)).toEqual({ ts: "2026-01-02T03:04:05.678Z", level: "info", msg: "still here", fieldsError: "fields could not be read" });
  });
});
