import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { jwtVerify } from "jose";
import { JWT_SECRET, startServer, type TestServer } from "./helpers/server.ts";

describe("GET /dev/token", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server.stop());

  test("format=text answers the bare token and a newline, usable as TOKEN=$(curl …)", async () => {
    const res = await fetch(`${server.http}/dev/token?user=alice&tier=pro&format=text`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/plain");
    const body = await res.text();
    expect(body.endsWith("\n")).toBe(true);
    const { payload } = await jwtVerify(body.trim(), new TextEncoder().encode(JWT_SECRET));
    expect({ sub: payload.sub, tier: payload.tier }).toEqual({ sub: "alice", tier: "pro" });
  });

  test("the default stays JSON, and an unknown format is a 400 naming the choices", async () => {
    const json = await fetch(`${server.http}/dev/token?user=alice`);
    expect(Object.keys((await json.json()) as object)).toEqual(["token"]);
    const bad = await fetch(`${server.http}/dev/token?user=alice&format=xml`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toContain("json, text");
  });
});
