import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { parseConfig } from "../../src/config/load.ts";
import { devHint, printDevHint } from "../../src/server/dev-hint.ts";
import { devTokenResponse } from "../../src/server/dev-token.ts";
import { HttpError } from "../../src/server/http.ts";

const dev = (env: Record<string, string> = {}) => parseConfig("development", { auth: { jwtSecret: "s".repeat(32), apiKey: "k".repeat(32) } }, env);

describe("devHint", () => {
  test("names the data dir, the status page, how to get a token and publish; never a secret", () => {
    const config = dev({ COURIER_DATA_DIR: "./data/dev" });
    const hint = devHint(config, new URL("http://127.0.0.1:8080/"))!;
    expect(hint).toContain(`data:        ${resolve("./data/dev")} (embedded store`);
    expect(hint).toContain("TOKEN=$(bun run token alice --tier pro)");
    expect(hint).toContain("TOKEN=$(curl -s 'http://localhost:8080/dev/token?user=alice&tier=pro&format=text')");
    expect(hint).toContain("status page: http://localhost:8080/?token=$TOKEN");
    expect(hint).not.toContain(config.auth.apiKey!);
    expect(hint).not.toContain(config.auth.jwtSecret!);
  });

  test("in cluster mode it names the node, and keeps a specific host", () => {
    const hint = devHint(dev({ COURIER_REDIS_URL: "redis://:password@redis:6379", COURIER_NODE_ID: "n7" }), new URL("http://10.1.2.3:9000/"))!;
    expect(hint).toContain("Redis (cluster mode, node n7)");
    expect(hint).not.toContain("password");
    expect(hint).toContain("status page: http://10.1.2.3:9000/?token=$TOKEN");
  });

  test("without a JWT secret it says tokens need one", () => {
    const config = parseConfig("development", { auth: { jwksUrl: "https://id.example/jwks" } });
    expect(devHint(config, new URL("http://127.0.0.1:8080/"))).toContain("tokens need COURIER_JWT_SECRET");
  });

  test("only in development", () => {
    const written: string[] = [];
    printDevHint(parseConfig("test", {}), new URL("http://127.0.0.1:8080/"), (text) => written.push(text));
    expect(written).toEqual([]);
    printDevHint(dev(), new URL("http://127.0.0.1:8080/"), (text) => written.push(text));
    expect(written).toHaveLength(1);
  });
});

describe("devTokenResponse", () => {
  test("JSON by default and with format=json", async () => {
    for (const format of [null, "json"]) {
      const res = devTokenResponse("a.b.c", format);
      expect(res.headers.get("content-type")).toContain("application/json");
      expect(await res.json()).toEqual({ token: "a.b.c" });
    }
  });

  test("format=text is the bare token and a newline, for TOKEN=$(curl …)", async () => {
    const res = devTokenResponse("a.b.c", "text");
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.text()).toBe("a.b.c\n");
  });

  test("another format is a 400 naming the choices", () => {
    expect(() => devTokenResponse("a.b.c", "xml")).toThrow(new HttpError(400, "format must be one of json, text"));
  });
});

test("devHint points at the metrics port when /metrics has its own", () => {
  expect(devHint(dev({ COURIER_METRICS_PORT: "9464" }), new URL("http://127.0.0.1:8080/"))).toContain("metrics:     http://localhost:9464/metrics");
});
