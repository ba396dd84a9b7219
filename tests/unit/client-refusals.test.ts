/**
 * The SDK's side of PROTOCOL §3 v1.1: the token travels as a subprotocol by default, and after an
 * attempt that got no welcome the client asks `/v1/ws/check` why, reports it in `status`, honours
 * `Retry-After`, and stops on refusals that cannot heal by themselves.
 */
import { afterEach, describe, expect, jest, test } from "bun:test";
import type { StatusChange } from "../../packages/client/src/index.ts";
import { advance, flush, setup } from "./client-fakes.ts";

afterEach(() => {
  jest.useRealTimers();
});

const refusal = (status: number, reason: string, retryAfter?: string) => () => ({
  status,
  body: { error: "x", message: "refused", reason },
  ...(retryAfter ? { headers: { "Retry-After": retryAfter } } : {}),
});

describe("token transport", () => {
  test("by default the token is offered as a subprotocol beside courier.v1, never in the URL", () => {
    const { client, ws } = setup({ token: "jwt-1", session: "s7" });
    client.connect();
    expect(ws.last().protocols).toEqual(["courier.v1", "courier.token.jwt-1"]);
    expect(ws.last().url.searchParams.has("token")).toBe(false);
    expect(ws.last().url.searchParams.get("session")).toBe("s7");
    client.close();
  });

  test('tokenTransport "query" puts it in ?token= and offers no subprotocol', () => {
    const { client, ws } = setup({ token: "jwt-1", tokenTransport: "query" });
    client.connect();
    expect(ws.last().protocols).toEqual([]);
    expect(ws.last().url.searchParams.get("token")).toBe("jwt-1");
    client.close();
  });

  test("an unknown tokenTransport is a TypeError", () => {
    expect(() => setup({ tokenTransport: "cookie" as never })).toThrow(TypeError);
  });
});

describe("refusals learnt from /v1/ws/check", () => {
  test("asks once per failed attempt, with the token in Authorization and not in the URL", async () => {
    const { client, ws, checks } = setup({ token: "jwt-1" });
    client.connect();
    expect(checks).toHaveLength(0);
    ws.last().fail();
    await flush();
    expect(checks).toHaveLength(1);
    expect(checks[0]!.url.href).toBe("http://courier.test/v1/ws/check");
    expect(checks[0]!.headers).toEqual({ Authorization: "Bearer jwt-1" });
    client.close();
  });

  test("a 200 (accepted now) changes nothing: connect_failed, the schedule as before", async () => {
    const statuses: StatusChange[] = [];
    const { client, ws } = setup({ onStatus: (s) => statuses.push(s) });
    client.connect();
    ws.last().fail();
    await flush();
    expect(statuses.at(-1)).toEqual({ status: "connecting", reason: "connect_failed", polling: false });
    advance(99);
    expect(ws.sockets).toHaveLength(1);
    advance(1);
    expect(ws.sockets).toHaveLength(2);
    client.close();
  });

  for (const [status, reason] of [
    [401, "token_expired"],
    [401, "unauthorized"],
    [403, "forbidden_origin"],
  ] as const) {
    test(`${status} ${reason} with a fixed token: offline with that reason, no more attempts`, async () => {
      const statuses: StatusChange[] = [];
      const { client, ws } = setup({ onStatus: (s) => statuses.push(s) }, refusal(status, reason));
      client.connect();
      ws.last().fail();
      await flush();
      expect(client.status).toBe("offline");
      expect(statuses.at(-1)).toEqual({ status: "offline", reason, polling: false });
      advance(60_000);
      expect(ws.sockets).toHaveLength(1);
      client.connect(); // the app may try again, e.g. with the user's new token
      expect(ws.sockets).toHaveLength(2);
      client.close();
    });
  }

  test("401 token_expired with a token provider: reported, then the provider is asked again", async () => {
    const statuses: StatusChange[] = [];
    let n = 0;
    const { client, ws } = setup({ token: () => `tok${++n}`, onStatus: (s) => statuses.push(s) }, refusal(401, "token_expired"));
    client.connect();
    ws.last().fail();
    await flush();
    expect(statuses.at(-1)).toEqual({ status: "connecting", reason: "token_expired", polling: false });
    advance(100);
    expect(ws.sockets).toHaveLength(2);
    expect(ws.last().token).toBe("tok2");
    client.close();
  });

  test("403 with a token provider still stops: another token cannot fix an origin", async () => {
    const { client, ws } = setup({ token: () => "tok" }, refusal(403, "forbidden_origin"));
    client.connect();
    ws.last().fail();
    await flush();
    expect(client.status).toBe("offline");
    advance(60_000);
    expect(ws.sockets).toHaveLength(1);
    client.close();
  });

  for (const [status, reason] of [
    [429, "too_many_connections"],
    [429, "rate_limited"],
    [503, "unavailable"],
  ] as const) {
    test(`${status} ${reason}: reported, and the next attempt waits Retry-After (not yet at delay-1)`, async () => {
      const statuses: StatusChange[] = [];
      const { client, ws } = setup({ onStatus: (s) => statuses.push(s) }, refusal(status, reason, "7"));
      client.connect();
      ws.last().fail();
      await flush();
      expect(statuses.at(-1)).toEqual({ status: "connecting", reason, polling: false });
      advance(6_999);
      expect(ws.sockets).toHaveLength(1);
      advance(1);
      expect(ws.sockets).toHaveLength(2);
      client.close();
    });
  }

  test("a server without reason in the body: the status names it", async () => {
    const statuses: StatusChange[] = [];
    const { client, ws } = setup({ onStatus: (s) => statuses.push(s) }, () => ({ status: 429, body: { error: "rate_limited", message: "x" } }));
    client.connect();
    ws.last().fail();
    await flush();
    expect(statuses.at(-1)?.reason).toBe("too_many_connections");
    client.close();
  });

  test("an answer that arrives after a later attempt was welcomed is ignored", async () => {
    let answer!: () => void;
    const held = new Promise<void>((resolve) => (answer = resolve));
    const { client, ws } = setup({
      // A check that stays unanswered until the test lets it answer 403.
      fetch: async () => {
        await held;
        return { ok: false, status: 403, headers: { get: () => null }, json: async () => ({ reason: "forbidden_origin" }) };
      },
    });
    client.connect();
    ws.last().fail();
    advance(100);
    ws.last().welcome();
    answer();
    await flush();
    expect(client.status).toBe("live");
    client.close();
  });

  test("checkRefusals: false never asks", async () => {
    const { client, ws, checks } = setup({ checkRefusals: false });
    client.connect();
    ws.last().fail();
    await flush();
    expect(checks).toHaveLength(0);
    client.close();
  });
});
