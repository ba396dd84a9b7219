/**
 * Decides whether Redis tests run. They read `COURIER_REDIS_URL`; without it they are skipped with a
 * visible reason, except under `CI=true`, where they run against `redis://127.0.0.1:6379` and fail
 * when no Redis answers there (a CI job must never go green by skipping them).
 *
 * @example
 * describeRedis("redis engine", (url) => {
 *   test("pings", async () => { … new RedisClient(url) … });
 * });
 */
import { describe } from "bun:test";
import { RedisClient } from "bun";

const CI_DEFAULT_URL = "redis://127.0.0.1:6379";

/** Deletes every key under `prefix` (a test's own key space; never anything else). */
export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const admin = new RedisClient(url);
  let cursor = "0";
  do {
    const [next, keys] = (await admin.send("SCAN", [cursor, "MATCH", `${prefix}*`, "COUNT", "1000"])) as [string, string[]];
    cursor = next;
    if (keys.length > 0) await admin.send("DEL", keys);
  } while (cursor !== "0");
  admin.close();
}

/** The Redis URL tests use, or null when they should be skipped. */
export function redisUrl(): string | null {
  const url = process.env.COURIER_REDIS_URL?.trim();
  if (url) return url;
  return process.env.CI === "true" ? CI_DEFAULT_URL : null;
}

/** `describe` when Redis tests run, `describe.skip` with the reason in its name (and a warning) otherwise. */
export function describeRedis(name: string, body: (url: string) => void): void {
  const url = redisUrl();
  if (url) {
    describe(name, () => body(url));
    return;
  }
  const reason = "COURIER_REDIS_URL is not set (set it, or CI=true, to run Redis tests)";
  console.warn(`[skip] ${name}: ${reason}`);
  describe.skip(`${name} [skipped: ${reason}]`, () => body(CI_DEFAULT_URL));
}
