/**
 * Hardening (hostile input, abuse) against the real server: every input limit is a config field,
 * enforced with a clear error and counted; user tokens are refused in every broken shape with a
 * 401 that never echoes them; keys, origins and headers; nothing leaks into answers or logs.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SignJWT, base64url } from "jose";
import { createHmac } from "node:crypto";
import { connect, connectWelcomed, upgradeStatus } from "./helpers/client.ts";
import { API_KEY, JWT_SECRET, startServer, type TestServer } from "./helpers/server.ts";
import { keyMatches } from "../src/auth/keys.ts";
import { CloseCode } from "../src/protocol/codes.ts";

const LIMITS = {
  maxFrameBytes: 4096,
  maxJsonDepth: 8,
  subscriptionsPerConnection: 3,
  batchMaxItems: 5,
  maxPublishBodyBytes: 2048,
  framesPerSecond: 1,
  frameBurst: 20,
  rateLimitStrikes: 3,
  protocolErrorStrikes: 4,
};

let plain: TestServer;
let limited: TestServer;
const servers: TestServer[] = [];
beforeAll(async () => {
  plain = await startServer({ extensions: () => [] });
  limited = await startServer({ config: { limits: LIMITS }, extensions: () => [] });
  servers.push(plain, limited);
});
afterAll(async () => {
  for (const s of servers) await s.stop();
});

let users = 0;
/** A fresh user per connection, so the per-user connection limit never interferes. */
async function welcomed(server: TestServer, claims?: Parameters<TestServer["token"]>[1]): ReturnType<typeof connectWelcomed> {
  return connectWelcomed(`${server.ws}?token=${await server.token(`h${users++}`, claims)}`);
}

async function rejected(server: TestServer, reason: string): Promise<number> {
  const text = await (await fetch(`${server.http}/metrics`)).text();
  const match = new RegExp(`^courier_frames_rejected_total\\{reason="${reason}"\\} (\\d+)`, "m").exec(text);
  return match ? Number(match[1]) : 0;
}

const post = (server: TestServer, path: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${server.http}${path}`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}`, ...headers }, body });

describe("frame limits (each a config field, answered and counted)", () => {
  test("limits.maxFrameBytes: a frame at the limit is answered; one byte over closes 1009, counted too_large", async () => {
    const c = await welcomed(limited);
    const frame = (id: string, pad: number) => `{"type":"ping","id":"${id}","pad":"${"x".repeat(pad)}"}`;
    const atLimit = frame("at", LIMITS.maxFrameBytes - frame("at", 0).length);
    expect(atLimit.length).toBe(LIMITS.maxFrameBytes);
    c.send(atLimit);
    expect(await c.next((f) => f.id === "at")).toMatchObject({ type: "pong" });
    const before = await rejected(limited, "too_large");
    c.send(frame("over", LIMITS.maxFrameBytes - frame("over", 0).length + 1));
    expect((await c.closed).code).toBe(CloseCode.MessageTooBig);
    expect(await rejected(limited, "too_large")).toBe(before + 1);
  });

  test("limits.maxJsonDepth: nesting at the limit is answered; one level deeper is bad_request, counted too_deep, the connection stays", async () => {
    const c = await welcomed(limited);
    const nest = (n: number) => "[".repeat(n) + "]".repeat(n);
    // The frame object is level 1.
    c.send(`{"type":"ping","id":"ok","x":${nest(LIMITS.maxJsonDepth - 1)}}`);
    expect(await c.next((f) => f.id === "ok")).toMatchObject({ type: "pong" });
    const before = await rejected(limited, "too_deep");
    c.send(`{"type":"ping","id":"deep","x":${nest(LIMITS.maxJsonDepth)}}`);
    expect(await c.next((f) => f.type === "error")).toEqual({ type: "error", code: "bad_request", message: "frame nests too deeply" });
    expect(await rejected(limited, "too_deep")).toBe(before + 1);
    // 100,000 levels never reach JSON.parse's recursion.
    c.send(`{"x":${nest(100_000).slice(0, LIMITS.maxFrameBytes - 10)}`);
    expect(await c.request({ type: "ping" })).toMatchObject({ type: "pong" });
    expect(c.frames.filter((f) => f.type === "error")).toHaveLength(2);
    c.close();
  });

  test("limits.subscriptionsPerConnection: one more subscribe is limit_exceeded and counted; an unsubscribe makes room", async () => {
    const c = await welcomed(limited);
    for (let i = 0; i < LIMITS.subscriptionsPerConnection; i++) expect(await c.request({ type: "subscribe", channel: `public:cap-${i}` })).toMatchObject({ type: "subscribed" });
    const before = await rejected(limited, "subscriptions_limit");
    expect(await c.request({ type: "subscribe", id: "over", channel: "public:cap-x" })).toEqual({
      type: "error",
      id: "over",
      code: "limit_exceeded",
      message: `at most ${LIMITS.subscriptionsPerConnection} subscriptions per connection`,
    });
    expect(await rejected(limited, "subscriptions_limit")).toBe(before + 1);
    await c.request({ type: "unsubscribe", channel: "public:cap-0" });
    expect(await c.request({ type: "subscribe", channel: "public:cap-x" })).toMatchObject({ type: "subscribed" });
    c.close();
  });

  test("limits.protocolErrorStrikes: that many bad frames get bad_request each, the next closes 4400; all counted", async () => {
    const c = await welcomed(limited);
    const before = await rejected(limited, "bad_json");
    for (let i = 0; i <= LIMITS.protocolErrorStrikes; i++) c.send("{nope");
    expect((await c.closed).code).toBe(CloseCode.ProtocolErrors);
    expect(c.frames.filter((f) => f.type === "error" && f.code === "bad_request")).toHaveLength(LIMITS.protocolErrorStrikes);
    expect(await rejected(limited, "bad_json")).toBe(before + LIMITS.protocolErrorStrikes + 1);
  });

  test("limits.framesPerSecond/frameBurst/rateLimitStrikes: the burst passes, then rate_limited errors, then 4429; counted", async () => {
    const c = await welcomed(limited);
    const before = await rejected(limited, "rate_limited");
    for (let i = 0; i < LIMITS.frameBurst + LIMITS.rateLimitStrikes + 10; i++) c.send({ type: "ping", id: i });
    expect((await c.closed).code).toBe(CloseCode.TooManyFrames);
    // At 1 frame/s a token or two may refill while the burst is read.
    const pongs = c.frames.filter((f) => f.type === "pong").length;
    expect(pongs).toBeGreaterThanOrEqual(LIMITS.frameBurst);
    expect(pongs).toBeLessThanOrEqual(LIMITS.frameBurst + 2);
    expect(c.frames.filter((f) => f.type === "error")).toEqual(Array(LIMITS.rateLimitStrikes).fill({ type: "error", code: "rate_limited", message: "too many frames: slow down" }));
    expect(await rejected(limited, "rate_limited")).toBe(before + LIMITS.rateLimitStrikes + 1);
  });

  test("a binary frame closes 1003, counted binary", async () => {
    const c = await welcomed(limited);
    const before = await rejected(limited, "binary");
    c.ws.send(new Uint8Array([0x7b, 0x7d]));
    expect((await c.closed).code).toBe(CloseCode.UnsupportedData);
    expect(await rejected(limited, "binary")).toBe(before + 1);
  });
});

describe("channel names, ids and offsets", () => {
  const badChannels = ["public:*", "public:a*b", "public:a..b", "public:..", "public:a\u0000b", "public:a\nb", "public:a\u007f", "public:caf\u00e9", "public:\u202eevil", "public:a b", "public:a/b", "Public:x", "public:", ":name", "public:" + "x".repeat(129), "k".repeat(33) + ":x"];

  test("invalid channel names are bad_request on subscribe (id echoed, counted bad_channel), 400 on publish and on history", async () => {
    const before = await rejected(plain, "bad_channel");
    const token = await plain.token("reader");
    for (const [i, channel] of badChannels.entries()) {
      // A fresh connection every few names: each refusal is a protocol strike.
      const c = await welcomed(plain);
      expect(await c.request({ type: "subscribe", id: `c${i}`, channel })).toMatchObject({ type: "error", id: `c${i}`, code: "bad_request" });
      c.close();
      const res = await plain.publish({ channel, event: "e" });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: "bad_request", issues: [{ path: "channel" }] });
      const history = await fetch(`${plain.http}/v1/history?${new URLSearchParams({ channel, token })}`);
      expect(history.status).toBe(400);
    }
    expect(await rejected(plain, "bad_channel")).toBe(before + badChannels.length);
  });

  test("offsets must be safe non-negative integers; ids that are not valid are never echoed", async () => {
    const c = await welcomed(plain);
    for (const offset of ["-1", "1.5", "9007199254740992", "1e400", '"5"', "null"]) {
      c.send(`{"type":"subscribe","id":"s","channel":"public:o","since":{"offset":${offset},"epoch":"e"}}`);
      c.send(`{"type":"ack","id":"a","channel":"public:o","offset":${offset}}`);
    }
    const errors = await c.collect((f) => f.type === "error", 12);
    expect(errors.every((f) => f.code === "bad_request" && (f.id === "s" || f.id === "a"))).toBe(true);
    c.close();

    const d = await welcomed(plain);
    for (const id of ["x".repeat(65), -1, 1.5, 2 ** 53, true, null, { a: 1 }, ["x"]]) d.send({ type: "ping", id });
    const refused = await d.collect((f) => f.type === "error", 8);
    expect(refused.filter((f) => "id" in f)).toEqual([]);
    expect(await d.request({ type: "ping", id: Number.MAX_SAFE_INTEGER })).toMatchObject({ type: "pong", id: Number.MAX_SAFE_INTEGER });
    expect(await d.request({ type: "ping", id: "x".repeat(64) })).toMatchObject({ type: "pong", id: "x".repeat(64) });
    d.close();
  });

  test("a since offset beyond the top is recovered:false offset_ahead; a huge ack is clamped, not trusted", async () => {
    const c = await welcomed(plain);
    await plain.publish({ channel: "public:ahead", event: "e" });
    const sub = await c.request({ type: "subscribe", channel: "public:ahead" });
    const again = await welcomed(plain);
    expect(await again.request({ type: "subscribe", channel: "public:ahead", since: { offset: Number.MAX_SAFE_INTEGER, epoch: sub.epoch } })).toMatchObject({ recovered: false, reason: "offset_ahead" });
    c.send({ type: "ack", channel: "public:ahead", offset: Number.MAX_SAFE_INTEGER });
    expect(await c.request({ type: "ping" })).toMatchObject({ type: "pong" });
    await plain.publish({ channel: "public:ahead", event: "after" });
    expect(await c.next((f) => f.type === "event")).toMatchObject({ offset: 2, event: "after" });
    c.close();
    again.close();
  });
});

describe("publish limits", () => {
  test("limits.batchMaxItems: a batch of that many passes; one more is 400 naming the limit", async () => {
    const items = (n: number) => JSON.stringify({ items: Array.from({ length: n }, () => ({ channel: "public:b", event: "e" })) });
    expect((await post(limited, "/v1/publish/batch", items(LIMITS.batchMaxItems))).status).toBe(200);
    const res = await post(limited, "/v1/publish/batch", items(LIMITS.batchMaxItems + 1));
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: "bad_request", message: `a batch holds at most ${LIMITS.batchMaxItems} items` });
  });

  test("a batch of a million empty items is refused 400 by its count, before any per-item work (not a 503 timeout)", async () => {
    const limit = plain.config.limits.maxPublishBodyBytes * 4;
    const n = Math.floor((limit - 20) / 3);
    const res = await post(plain, "/v1/publish/batch", `{"items":[${"{},".repeat(n - 1)}{}]}`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: "bad_request", message: `a batch holds at most ${plain.config.limits.batchMaxItems} items` });
    // The fast path (small bodies) refuses the same way.
    const small = await post(limited, "/v1/publish/batch", `{"items":[${"{},".repeat(LIMITS.batchMaxItems)}{}]}`);
    expect(await small.json()).toEqual({ error: "bad_request", message: `a batch holds at most ${LIMITS.batchMaxItems} items` });
  });

  test("limits.maxPublishBodyBytes: a body at the limit passes; one byte over is 413; a batch may be 4×", async () => {
    const body = (size: number) => {
      const head = '{"channel":"public:size","event":"e","data":"';
      return head + "x".repeat(size - head.length - 2) + '"}';
    };
    expect(body(LIMITS.maxPublishBodyBytes).length).toBe(LIMITS.maxPublishBodyBytes);
    expect((await post(limited, "/v1/publish", body(LIMITS.maxPublishBodyBytes))).status).toBe(200);
    const over = await post(limited, "/v1/publish", body(LIMITS.maxPublishBodyBytes + 1));
    expect(over.status).toBe(413);
    expect(await over.json()).toEqual({ error: "limit_exceeded", message: `body larger than ${LIMITS.maxPublishBodyBytes} bytes` });
    const batch = (size: number) => {
      const head = '{"items":[{"channel":"public:size","event":"e","data":"';
      return head + "x".repeat(size - head.length - 4) + '"}]}';
    };
    expect(batch(4 * LIMITS.maxPublishBodyBytes).length).toBe(4 * LIMITS.maxPublishBodyBytes);
    expect((await post(limited, "/v1/publish/batch", batch(4 * LIMITS.maxPublishBodyBytes))).status).toBe(200);
    expect((await post(limited, "/v1/publish/batch", batch(4 * LIMITS.maxPublishBodyBytes + 1))).status).toBe(413);
  });

  test("publish nesting deeper than maxJsonDepth is 400", async () => {
    const deep = `{"channel":"public:deep","event":"e","data":${"[".repeat(LIMITS.maxJsonDepth + 2)}${"]".repeat(LIMITS.maxJsonDepth + 2)}}`;
    const res = await post(limited, "/v1/publish", deep);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "bad_request", message: "body nests too deeply" });
  });

  test("a client-sent dataJson never reaches event frames, even on a publish carrying an items array", async () => {
    const forged = '1,"type":"welcome","x":{';
    const c = await welcomed(plain);
    await c.request({ type: "subscribe", channel: "public:forged" });
    for (const body of [{ channel: "public:forged", event: "e", items: [], dataJson: forged }, { channel: "public:forged", event: "e", dataJson: forged, data: 7 }]) {
      expect((await plain.publish(body)).status).toBe(200);
    }
    const batch = await post(plain, "/v1/publish/batch", JSON.stringify({ items: [{ channel: "public:forged", event: "e", dataJson: forged }], dataJson: forged }));
    expect(batch.status).toBe(200);
    // The test client parses every frame: a forged one would break it.
    expect((await c.collect((f) => f.type === "event", 3)).map((f) => f.data)).toEqual([null, 7, null]);
    const history = await fetch(`${plain.http}/v1/history?channel=public:forged&token=${await plain.token("reader")}`);
    expect((await history.json()).events.map((e: { data: unknown }) => e.data)).toEqual([null, 7, null]);
    c.close();
  });

  test("prototype keys in a publish body are plain data, never flags", async () => {
    const c = await welcomed(plain);
    await c.request({ type: "subscribe", channel: "public:proto" });
    const res = await post(plain, "/v1/publish", '{"channel":"public:proto","event":"e","__proto__":{"critical":true},"constructor":{"prototype":{"critical":true}},"data":{"__proto__":{"x":1}}}');
    expect(res.status).toBe(200);
    const event = await c.next((f) => f.type === "event");
    expect(event.critical).toBeUndefined();
    expect(JSON.stringify(event.data)).toBe('{"__proto__":{"x":1}}');
    expect(({} as Record<string, unknown>).critical).toBeUndefined();
    c.close();
  });
});

describe("user tokens (real upgrades)", () => {
  const secret = new TextEncoder().encode(JWT_SECRET);
  const now = () => Math.floor(Date.now() / 1000);
  const sign = (claims: Record<string, unknown>, alg = "HS256", key: Uint8Array = secret) => new SignJWT(claims).setProtectedHeader({ alg }).sign(key);
  /** A token whose header says `alg` but whose signature is HMAC-SHA256 with the secret (algorithm confusion). */
  const confused = (alg: string, claims: Record<string, unknown>) => {
    const input = `${base64url.encode(JSON.stringify({ alg, typ: "JWT" }))}.${base64url.encode(JSON.stringify(claims))}`;
    return `${input}.${createHmac("sha256", JWT_SECRET).update(input).digest("base64url")}`;
  };
  const valid = () => ({ sub: "tok", exp: now() + 600 });

  async function expectRefused(server: TestServer, token: string, message?: string) {
    for (const res of [await upgradeStatus(`${server.ws}?token=${token}`), await upgradeStatus(server.ws, { authorization: `Bearer ${token}` })]) {
      expect(res.status).toBe(401);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      const text = await res.text();
      const body = JSON.parse(text);
      expect(body.error).toBe("unauthorized");
      if (message) expect(body.message).toContain(message);
      // Never echoes the token, nor any part of it.
      for (const part of token.split(".").filter((p) => p.length > 8)) expect(text).not.toContain(part);
    }
    const history = await fetch(`${server.http}/v1/history?channel=public:x`, { headers: { authorization: `Bearer ${token}` } });
    expect(history.status).toBe(401);
  }

  test("alg none is 401", async () => {
    const none = `${base64url.encode('{"alg":"none","typ":"JWT"}')}.${base64url.encode(JSON.stringify(valid()))}.`;
    await expectRefused(plain, none);
  });

  test("another algorithm is 401: HS512 with the secret, RS256 and ES256 headers over an HMAC signature", async () => {
    await expectRefused(plain, await sign(valid(), "HS512", new TextEncoder().encode(JWT_SECRET + JWT_SECRET)));
    await expectRefused(plain, await sign(valid(), "HS512"));
    await expectRefused(plain, confused("RS256", valid()));
    await expectRefused(plain, confused("ES256", valid()));
    await expectRefused(plain, confused("none", valid()));
    // The same construction with the right header is accepted: the refusals are about the algorithm.
    expect((await connectWelcomed(`${plain.ws}?token=${confused("HS256", { sub: "confusion-control", exp: now() + 600 })}`)).welcome.user).toBe("confusion-control");
  });

  test("a bad signature is 401", async () => {
    const token = await sign(valid());
    const [h, p, s] = token.split(".");
    await expectRefused(plain, `${h}.${p}.${s!.slice(0, -2)}${s!.endsWith("AA") ? "BB" : "AA"}`);
    await expectRefused(plain, `${h}.${base64url.encode(JSON.stringify({ ...valid(), sub: "admin" }))}.${s}`);
    await expectRefused(plain, await sign(valid(), "HS256", new TextEncoder().encode("another-secret-0123456789abcdef")));
  });

  test("expired, and not yet valid beyond the clock tolerance, are 401", async () => {
    await expectRefused(plain, await sign({ sub: "tok", exp: now() - 60 }), "expired");
    await expectRefused(plain, await sign({ sub: "tok", exp: now() + 600, nbf: now() + 60 }), "not valid yet");
    // Within the tolerance (clockToleranceS: 5) a fresh nbf is accepted.
    const c = await connectWelcomed(`${plain.ws}?token=${await sign({ sub: "nbf-ok", exp: now() + 600, nbf: now() + 2 })}`);
    c.close();
  });

  test("missing sub, missing exp, a bad sub, an invalid tier or channels claim are 401", async () => {
    await expectRefused(plain, await sign({ exp: now() + 600 }));
    await expectRefused(plain, await sign({ sub: "tok" }));
    await expectRefused(plain, await sign({ sub: "", exp: now() + 600 }));
    await expectRefused(plain, await sign({ sub: "a b", exp: now() + 600 }));
    await expectRefused(plain, await sign({ sub: 42, exp: now() + 600 }));
    await expectRefused(plain, await sign({ sub: "x".repeat(129), exp: now() + 600 }));
    await expectRefused(plain, await sign({ sub: "tok", exp: "tomorrow" }));
    await expectRefused(plain, await sign({ ...valid(), tier: "platinum" }), "tier");
    await expectRefused(plain, await sign({ ...valid(), tier: "__proto__" }), "tier");
    await expectRefused(plain, await sign({ ...valid(), tier: 3 }), "tier");
    await expectRefused(plain, await sign({ ...valid(), channels: "public:x" }), "channels");
    await expectRefused(plain, await sign({ ...valid(), channels: Array(101).fill("public:x") }), "channels");
  });

  test("garbage tokens are 401", async () => {
    for (const token of ["a.b.c", "..", "x".repeat(9000), `${base64url.encode("{")}.${base64url.encode("{}")}.sig`, "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln"]) await expectRefused(plain, token);
  });

  test("with audience and issuer configured, a token without them or with others is 401", async () => {
    const strict = await startServer({ config: { auth: { audience: "courier", issuer: "https://auth.example" } }, extensions: () => [] });
    servers.push(strict);
    const claims = { ...valid(), aud: "courier", iss: "https://auth.example" };
    await expectRefused(strict, await sign(valid()));
    await expectRefused(strict, await sign({ ...claims, aud: "other" }), "aud");
    await expectRefused(strict, await sign({ ...claims, iss: "https://evil.example" }), "iss");
    await expectRefused(strict, await sign({ ...claims, aud: undefined }), "aud");
    const c = await connectWelcomed(`${strict.ws}?token=${await sign(claims)}`);
    expect(c.welcome.user).toBe("tok");
    c.close();
  });

  test("a token that expires on an open connection closes it 4401 once exp + clockToleranceS passes (the upgrade's rule)", async () => {
    const toleranceS = plain.config.auth.clockToleranceS;
    // Accepted with about a second of its tolerance left.
    const exp = now() - toleranceS + 1;
    const c = await connectWelcomed(`${plain.ws}?token=${await sign({ sub: "short-lived", exp })}`);
    const { code } = await c.closed;
    const closedAt = Date.now();
    expect(code).toBe(CloseCode.TokenExpired);
    // Not before the rule says expired; within a sweep period (1 s) and some slack after it.
    expect(closedAt).toBeGreaterThanOrEqual((exp + toleranceS) * 1000);
    expect(closedAt).toBeLessThan((exp + toleranceS) * 1000 + 2500);
  });

  test("a token expired within the clock tolerance is accepted at the upgrade and kept until the tolerance ends, then closed 4401", async () => {
    const toleranceS = plain.config.auth.clockToleranceS;
    const exp = now() - 2;
    const c = await connectWelcomed(`${plain.ws}?token=${await sign({ sub: "just-expired", exp })}`);
    expect((await c.closed).code).toBe(CloseCode.TokenExpired);
    // The old sweep closed it within a second of the welcome, at 0 s of tolerance.
    expect(Date.now()).toBeGreaterThanOrEqual((exp + toleranceS) * 1000);
  });
});

describe("sessions and bodies", () => {
  test("hostile ?session= values resume nothing and reveal nothing", async () => {
    const owner = await welcomed(plain);
    await owner.request({ type: "subscribe", channel: "public:sess" });
    owner.close();
    await owner.closed;
    for (const session of ["__proto__", "constructor", "x".repeat(10_000), "../../etc/passwd", "%00", "", owner.welcome.session]) {
      // The owner's own session id, presented by another user, is a miss too.
      const c = await connect(`${plain.ws}?token=${await plain.token(`thief${users++}`)}&session=${encodeURIComponent(session)}`);
      const welcome = await c.next((f) => f.type === "welcome");
      expect(welcome).toMatchObject({ resumed: false });
      expect(welcome.session).not.toBe(session);
      expect(await c.request({ type: "ping" })).toMatchObject({ type: "pong" });
      expect(c.frames.filter((f) => f.type === "subscribed")).toEqual([]);
      c.close();
    }
  });

  test("a chunked body (no Content-Length) over the limit is 413 JSON", async () => {
    const size = LIMITS.maxPublishBodyBytes * 2;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let sent = 0; sent < size; sent += 1024) controller.enqueue(new Uint8Array(1024).fill(0x20));
        controller.close();
      },
    });
    const res = await fetch(`${limited.http}/v1/publish`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: "limit_exceeded" });
  });
});

describe("keys, origins and headers", () => {
  test("API keys: only the exact key, as a Bearer header; compared by keyMatches", async () => {
    expect(keyMatches(API_KEY, API_KEY)).toBe(true);
    for (const given of [API_KEY.slice(0, -1), API_KEY + "x", API_KEY.toUpperCase(), API_KEY.replace(/.$/, "0"), "", null]) expect(keyMatches(given, API_KEY)).toBe(false);
    expect(keyMatches(API_KEY, undefined)).toBe(false);
    const body = JSON.stringify({ channel: "public:k", event: "e" });
    for (const authorization of [`Bearer ${API_KEY}x`, `Basic ${API_KEY}`, API_KEY, `Bearer ${API_KEY} ${API_KEY}`, `Bearer ${await plain.token("u")}`]) {
      const res = await fetch(`${plain.http}/v1/publish`, { method: "POST", headers: { authorization }, body });
      expect(res.status).toBe(401);
      expect(await res.text()).not.toContain(API_KEY);
    }
    expect((await fetch(`${plain.http}/v1/publish?api_key=${API_KEY}`, { method: "POST", body })).status).toBe(401);
    expect((await fetch(`${plain.http}/ws/stats?api_key=${API_KEY}`)).status).toBe(401);
    expect((await fetch(`${plain.http}/v1/publish`, { method: "POST", headers: { authorization: `bearer ${API_KEY}` }, body })).status).toBe(200);
  });

  test("server.allowedOrigins: another Origin is 403 before the token is read; listed and absent origins connect", async () => {
    const guarded = await startServer({ config: { server: { allowedOrigins: ["https://app.example"] } }, extensions: () => [] });
    servers.push(guarded);
    const url = `${guarded.ws}?token=${await guarded.token("origin-user")}`;
    for (const origin of ["https://evil.example", "https://app.example.evil.example", "null", "https://APP.example"]) {
      const res = await upgradeStatus(url, { origin });
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({ error: "forbidden", message: "origin not allowed", reason: "forbidden_origin" });
    }
    expect((await upgradeStatus(guarded.ws, { origin: "https://evil.example" })).status).toBe(403);
    const listed = await connect(url, { headers: { origin: "https://app.example" } });
    expect(await listed.next((f) => f.type === "welcome")).toMatchObject({ user: "origin-user" });
    listed.close();
    const absent = await connectWelcomed(url);
    absent.close();
  });

  test("every JSON answer carries nosniff and no-store; known paths with another method are 405 with Allow", async () => {
    const token = await plain.token("headers");
    const answers = [
      await fetch(`${plain.http}/health`),
      await fetch(`${plain.http}/ready`),
      await fetch(`${plain.http}/ws/stats`, { headers: { authorization: `Bearer ${API_KEY}` } }),
      await fetch(`${plain.http}/ws/stats`),
      await fetch(`${plain.http}/v1/history?channel=public:h&token=${token}`),
      await fetch(`${plain.http}/v1/history?channel=public:h`),
      await plain.publish({ channel: "public:h", event: "e" }),
      await plain.publish({ channel: "nope", event: "e" }),
      await post(plain, "/v1/publish", "x".repeat(plain.config.limits.maxPublishBodyBytes + 1)),
      await fetch(`${plain.http}/dev/token?user=h`),
      await fetch(`${plain.http}/nope`),
      await fetch(`${plain.http}/v1/publish`),
      await upgradeStatus(plain.ws),
    ];
    for (const res of answers) {
      expect({ url: res.url, type: res.headers.get("content-type"), nosniff: res.headers.get("x-content-type-options"), cache: res.headers.get("cache-control") }).toEqual({
        url: res.url,
        type: "application/json; charset=utf-8",
        nosniff: "nosniff",
        cache: "no-store",
      });
    }
    const wrong = await fetch(`${plain.http}/v1/publish`, { method: "PUT" });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("POST");
    expect(await wrong.json()).toMatchObject({ error: "method_not_allowed" });
    const metrics = await fetch(`${plain.http}/metrics`);
    expect(metrics.headers.get("x-content-type-options")).toBe("nosniff");
  });

  test("the status page and its assets carry security headers", async () => {
    const page = await fetch(`${plain.http}/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const headers = (res: Response) => ({
      nosniff: res.headers.get("x-content-type-options"),
      frame: res.headers.get("x-frame-options"),
      referrer: res.headers.get("referrer-policy"),
      csp: res.headers.get("content-security-policy")?.includes("frame-ancestors 'none'"),
    });
    const want = { nosniff: "nosniff", frame: "DENY", referrer: "no-referrer", csp: true };
    expect(headers(page)).toEqual(want);
    expect(page.headers.get("cache-control")).toBe("no-store");
    for (const asset of html.match(/\/assets\/[^"']+/g) ?? []) expect(headers(await fetch(`${plain.http}${asset}`))).toEqual(want);
    expect((await fetch(`${plain.http}/`, { method: "POST" })).status).toBe(405);
  });

  test("users named like Object members get a real tier (no NaN gauges, no bogus stats keys)", async () => {
    const clients = [];
    for (const user of ["__proto__", "constructor", "toString"]) {
      const c = await connectWelcomed(`${plain.ws}?token=${await plain.token(user)}`);
      expect(await c.request({ type: "subscribe", channel: "signals:starter" })).toMatchObject({ type: "subscribed" });
      clients.push(c);
    }
    expect(Object.keys((await plain.stats()).byTier).sort()).toEqual(["enterprise", "pro", "starter"]);
    expect(await (await fetch(`${plain.http}/metrics`)).text()).not.toContain("NaN");
    for (const c of clients) c.close();
  });

  test("a channel kind named like an Object property is counted, not confused with it", async () => {
    const own = await startServer();
    servers.push(own);
    const c = await connectWelcomed(`${own.ws}?token=${await own.token("proto-user", { channels: ["constructor:x", "__proto__:y"] })}`);
    await c.request({ type: "subscribe", channel: "constructor:x" });
    await c.request({ type: "subscribe", channel: "__proto__:y" }).catch(() => null);
    const stats = await own.stats();
    expect(stats.subscriptions.constructor).toBe(1);
    const metrics = await (await fetch(`${own.http}/metrics`)).text();
    expect(metrics).toContain('courier_subscriptions{kind="constructor"} 1');
    c.close();
  });

  test("an internal failure answers 500 internal error: no stack, no path, no message; the log line has no stack", async () => {
    const failing = await startServer({
      extensions: () => [
        {
          routes: {
            "/boom": {
              GET: () => {
                throw new Error("owner lookup failed");
              },
            },
          },
          jobOwner: () => {
            throw new Error("owner store down");
          },
        },
      ],
    });
    servers.push(failing);
    const res = await fetch(`${failing.http}/boom`);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: "internal", message: "internal error" });
    const line = failing.logs.find((l) => l.includes("request failed"));
    expect(JSON.parse(line!)).toMatchObject({ level: "error", error: { name: "Error", message: "owner lookup failed" } });
    expect(line).not.toMatch(/stack|\.ts:\d+|\n/);
    // A permission check that cannot run is a dependency outage, not a bug: 503 with Retry-After.
    const history = await fetch(`${failing.http}/v1/history?channel=job:j1&token=${await failing.token("u")}`);
    expect(history.status).toBe(503);
    expect(history.headers.get("retry-after")).toBeTruthy();
    expect(await history.json()).toMatchObject({ error: "unavailable" });
  });
});

describe("logs", () => {
  test("no log line of these servers holds a key, the JWT secret or a token", () => {
    for (const server of servers) {
      const logs = server.logs.join("\n");
      expect(logs).not.toContain(JWT_SECRET);
      expect(logs).not.toMatch(/eyJ[\w-]*\.[\w-]+\.[\w-]*/);
      expect(logs).not.toContain(API_KEY);
    }
  });
});
