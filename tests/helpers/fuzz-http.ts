/**
 * Hostile HTTP requests, each with the statuses PROTOCOL.md §2 allows for it (the fuzz oracle),
 * and a raw HTTP/1.1 sender for requests `fetch` would normalize (dot segments, odd encodings).
 */
import { connect as tcpConnect } from "node:net";
import type { Random } from "./fuzz-random.ts";
import { BAD_CHANNELS } from "./fuzz-frames.ts";

export interface HostileRequest {
  label: string;
  method: string;
  /** Path and query, sent as is. */
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  /** Send over a bare socket, so the request target is not normalized by the client. */
  raw?: boolean;
  /** Statuses the server may answer. */
  expect: number[];
}

export interface HttpFuzzContext {
  apiKey: string;
  /** A valid user token for `user`. */
  token: string;
  user: string;
  /** Tokens that must be refused: expired, wrong secret, garbage. */
  badTokens: string[];
  maxPublishBodyBytes: number;
  batchMaxItems: number;
  maxJsonDepth: number;
  replayLimit: number;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends one HTTP/1.1 request over a fresh socket (`Connection: close`) and reads the answer. */
export function rawRequest(base: string, request: HostileRequest, timeoutMs = 5000): Promise<RawResponse> {
  const { hostname, port } = new URL(base);
  const body = request.body === undefined ? new Uint8Array() : typeof request.body === "string" ? Buffer.from(request.body) : request.body;
  const head =
    `${request.method} ${request.path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n` +
    Object.entries(request.headers).map(([k, v]) => `${k}: ${v}\r\n`).join("") +
    (body.length > 0 ? `Content-Length: ${body.length}\r\n` : "") +
    "\r\n";
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`raw ${request.method} ${request.path.slice(0, 80)}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on("connect", () => socket.write(Buffer.concat([Buffer.from(head, "latin1"), body])));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString();
      const end = text.indexOf("\r\n\r\n");
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (end < 0 || !match) return reject(new Error(`raw ${request.method} ${request.path.slice(0, 80)}: no HTTP answer: ${JSON.stringify(text.slice(0, 200))}`));
      const headers: Record<string, string> = {};
      for (const line of text.slice(0, end).split("\r\n").slice(1)) {
        const colon = line.indexOf(":");
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(match[1]), headers, body: text.slice(end + 4) });
    });
  });
}

/** Random JSON for `data`: unicode, big and tiny numbers, prototype keys, bounded depth. */
export function jsonValue(rng: Random, depth = 0): unknown {
  const roll = rng.int(0, depth >= 4 ? 5 : 8);
  switch (roll) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1.5, 1e300, -1e-300, Number.MAX_SAFE_INTEGER, 2 ** 63, rng.int(-1e6, 1e6)]);
    case 3:
      return rng.string(rng.int(0, 20), "ab \u0000\u001f\u2028\u2029\u00e9\ud83d\ude00\"\\/<>&'");
    case 4:
      return rng.pick(["__proto__", "constructor", "prototype", "eyJ-not-a-token", ""]);
    case 5:
      return rng.string(rng.int(0, 8));
    case 6:
    case 7: {
      const out: Record<string, unknown> = {};
      for (let i = rng.int(0, 4); i > 0; i--) {
        const key = rng.pick(["a", "b", "__proto__", "constructor", "prototype", "toString", "", "\u0000", "k" + rng.int(0, 9)]);
        // Defined as own data properties, exactly as JSON.parse would.
        Object.defineProperty(out, key, { value: jsonValue(rng, depth + 1), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    default:
      return Array.from({ length: rng.int(0, 4) }, () => jsonValue(rng, depth + 1));
  }
}

const GOOD_EVENT = () => "tick";
const BAD_EVENTS: readonly unknown[] = ["", "e".repeat(65), "has space", "caf\u00e9", "a/b", "a\u0000", 5, null, [], {}, true];

function nested(depth: number): string {
  return "[".repeat(depth) + "1" + "]".repeat(depth);
}

/**
 * The next hostile request.
 *
 * @example
 * const request = hostileRequest(rng, ctx);
 * const res = request.raw ? await rawRequest(base, request) : await fetch(base + request.path, request);
 */
export function hostileRequest(rng: Random, ctx: HttpFuzzContext): HostileRequest {
  const auth = { authorization: `Bearer ${ctx.apiKey}` };
  const channel = () => `public:fz-http-${rng.int(0, 9)}`;
  const publish = (body: string | Uint8Array, expect: number[], label: string, headers: Record<string, string> = {}): HostileRequest => ({
    label,
    method: "POST",
    path: "/v1/publish",
    headers: { ...auth, "content-type": "application/json", ...headers },
    body,
    expect,
  });
  const batch = (body: string, expect: number[], label: string): HostileRequest => ({ label, method: "POST", path: "/v1/publish/batch", headers: { ...auth }, body, expect });
  const validItem = () => ({ channel: channel(), event: GOOD_EVENT(), data: jsonValue(rng) });
  const roll = rng.int(0, 99);

  const request = ((): HostileRequest => {
    if (roll < 5) return publish(JSON.stringify(validItem()), [200], "valid publish");
    if (roll < 6) {
      // A stray `items` array does not make a publish a batch, and a sent `dataJson` never reaches
      // frames: later history reads of the channel would fail to parse.
      return publish(JSON.stringify({ ...validItem(), items: [], dataJson: '1,"type":"welcome","x":{' }), [200], "publish with items and a forged dataJson");
    }
    if (roll < 12) {
      const header = rng.pick([
        undefined,
        "Bearer wrong-key-0123456789abcdef",
        `Bearer ${ctx.apiKey}x`,
        `Bearer ${ctx.apiKey.slice(0, -1)}`,
        `Basic ${Buffer.from(`user:${ctx.apiKey}`).toString("base64")}`,
        `Bearer ${ctx.token}`,
        "Bearer",
        "Bearer  ",
        `${ctx.apiKey}`,
        `Bearer ${ctx.apiKey} extra`,
        "Bearer " + "k".repeat(4000),
      ]);
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (header !== undefined) headers.authorization = header;
      const path = rng.pick(["/v1/publish", "/v1/publish/batch", "/ws/stats"]);
      if (path === "/ws/stats") return { label: `stats with ${String(header).slice(0, 20)}`, method: "GET", path: rng.chance(0.5) ? path : `${path}?api_key=${ctx.apiKey}`, headers, expect: [401] };
      return { label: `bad key ${String(header).slice(0, 20)}`, method: "POST", path, headers, body: JSON.stringify(path === "/v1/publish" ? validItem() : { items: [validItem()] }), expect: [401] };
    }
    if (roll < 17) {
      // The content type is not what decides: valid JSON is a publish, anything else is 400.
      const type = rng.pick([undefined, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=latin1", "image/png", "application/json\u0000"]);
      const valid = rng.chance(0.5);
      const body = valid ? Buffer.from(JSON.stringify(validItem())) : Buffer.from(rng.pick(["channel=public:x&event=e", "--x\r\nContent-Disposition: form-data\r\n\r\n{}\r\n--x--", "\x89PNG\r\n", ""]));
      const headers: Record<string, string> = { ...auth };
      if (type !== undefined && !type.includes("\u0000")) headers["content-type"] = type;
      return { label: `content type ${type}`, method: "POST", path: "/v1/publish", headers, body: new Uint8Array(body), expect: valid ? [200] : [400] };
    }
    if (roll < 24) {
      const good = JSON.stringify(validItem());
      const broken = rng.pick([
        good.slice(0, rng.int(0, good.length - 1)),
        good + "x",
        good.replace(/"/g, "'"),
        "{" + good,
        good.replace(":", ""),
        "[" + good + "]",
        "null",
        "1e400",
        '"' + "s".repeat(100) + '"',
        "{\"channel\":\"public:x\",\"event\":\"e\",\"data\":NaN}",
        "{\"channel\":\"public:x\",\"event\":\"e\",\"data\":undefined}",
        "{\"channel\":\"public:x\",\"event\":\"e\",\"data\":\"\\ud800\\\"}",
      ]);
      return publish(broken, [400], `broken JSON ${broken.slice(0, 30)}`);
    }
    if (roll < 25) {
      // RFC 8259 §8.1 lets a parser ignore a leading byte order mark; Courier does.
      return publish("\ufeff" + JSON.stringify(validItem()), [200], "valid JSON after a byte order mark");
    }
    if (roll < 29) {
      const over = rng.int(1, 2048);
      const pad = ctx.maxPublishBodyBytes + over;
      if (rng.chance(0.3)) return batch(JSON.stringify({ items: [{ channel: "public:big", event: "e", data: "x".repeat(4 * ctx.maxPublishBodyBytes + over) }] }), [413], "batch over the limit");
      return publish(JSON.stringify({ channel: "public:big", event: "e", data: "x".repeat(pad) }), [413], `body over the limit by ${over}`);
    }
    if (roll < 34) {
      if (rng.chance(0.3)) {
        const pad = ctx.maxPublishBodyBytes - 200 - rng.int(0, 100);
        return publish(JSON.stringify({ channel: channel(), event: "near", data: "y".repeat(pad) }), [200], "body near the limit");
      }
      // Publish data nests at most maxJsonDepth + 2 in the body (the body and `data` itself).
      const deep = rng.chance(0.5);
      const depth = deep ? ctx.maxJsonDepth + 2 + rng.int(0, rng.chance(0.2) ? 10_000 : 50) : rng.int(1, ctx.maxJsonDepth);
      return publish(`{"channel":"${channel()}","event":"deep","data":${nested(depth)}}`, deep ? [400] : [200], `data nested ${depth}`);
    }
    if (roll < 44) {
      const item: Record<string, unknown> = validItem();
      const field = rng.pick(["channel", "event", "critical", "coalesce", "idem", "idemBody", "missing"]);
      let headers: Record<string, string> = {};
      if (field === "channel") item.channel = rng.chance(0.8) ? rng.pick(BAD_CHANNELS) : rng.pick([5, null, [], {}]);
      else if (field === "event") item.event = rng.pick(BAD_EVENTS);
      else if (field === "critical") item.critical = rng.pick(["yes", 1, null, "true", []]);
      else if (field === "coalesce") item.coalesce = rng.pick(["", "c".repeat(129), 5, {}]);
      else if (field === "idem") headers = { "idempotency-key": rng.pick(["has space", "k".repeat(129), "semi;colon and space"]) };
      else if (field === "idemBody") item.idempotencyKey = rng.pick(["", "k".repeat(129), "tab\there", 7]);
      else delete item[rng.pick(["channel", "event"])];
      return publish(JSON.stringify(item), [400], `invalid ${field}`, headers);
    }
    if (roll < 54) {
      const n = ctx.batchMaxItems;
      const cases: [() => string, number[], string][] = [
        [() => JSON.stringify({ items: [] }), [400], "empty batch"],
        [() => `{"items":[${"{},".repeat(Math.floor((4 * ctx.maxPublishBodyBytes) / 3) - 20)}{}]}`, [400], "batch of many empty items near the body limit"],
        [() => JSON.stringify({ items: Array.from({ length: n + rng.int(1, 50) }, () => ({ channel: "public:x", event: "e" })) }), [400], "batch over the item limit"],
        [() => JSON.stringify({ items: rng.pick([null, {}, "items", 5, true]) }), [400], "items not an array"],
        [() => JSON.stringify({}), [400], "no items"],
        [() => JSON.stringify({ items: [validItem(), rng.pick([1, "x", null, [], { channel: "nope", event: "e" }]), validItem()] }), [400], "one invalid item"],
        [() => JSON.stringify({ items: Array.from({ length: rng.int(1, n) }, validItem) }), [200], "valid batch"],
        [() => JSON.stringify({ items: [{ ...validItem(), idempotencyKey: `k-${rng.int(0, 1e9)}` }] }), [200], "valid batch item with an idempotency key"],
        [() => JSON.stringify({ items: [validItem()], dataJson: "{forged", data: 1 }), [200], "batch with a forged top-level dataJson"],
        [() => JSON.stringify({ items: [{ ...validItem(), dataJson: '1,"type":"welcome"' }] }).replace('"data":', '"_":'), [200], "batch item with a forged dataJson"],
        [() => JSON.stringify({ items: Array.from({ length: 3 }, () => ({ channel: "public:x", event: "e", data: JSON.parse(nested(ctx.maxJsonDepth + 5)) })) }), [400], "batch nesting too deep"],
      ];
      const [build, expect, label] = rng.pick(cases);
      return batch(build(), expect, label);
    }
    if (roll < 66) {
      const token = rng.pick([ctx.token, ctx.token, ctx.token, undefined, ...ctx.badTokens]);
      const tokenOk = token === ctx.token;
      const params = new URLSearchParams();
      const ch = rng.pick([channel(), channel(), `user:${ctx.user}`, "user:someone-else", undefined, ...BAD_CHANNELS.slice(0, 12)]);
      if (ch !== undefined) params.set("channel", ch);
      const since = rng.pick([undefined, "0", "1", "5", "abc", "-1", "1.5", "1e400", "9007199254740993", "0x", "Infinity", "NaN"]);
      if (since !== undefined) params.set("since", since);
      const limit = rng.pick([undefined, "1", "100", "0", "-5", String(ctx.replayLimit + 1), "1e9", "x"]);
      if (limit !== undefined) params.set("limit", limit);
      if (rng.chance(0.3)) params.set("epoch", rng.pick(["e", "x".repeat(2000), "\u0000", "__proto__"]));
      const inHeader = rng.chance(0.5);
      if (token !== undefined && !inHeader) params.set("token", token);
      const headers: Record<string, string> = token !== undefined && inHeader ? { authorization: `Bearer ${token}` } : {};
      let expect: number[];
      const channelOk = ch !== undefined && !BAD_CHANNELS.includes(ch);
      const sinceOk = since === undefined || ["0", "1", "5"].includes(since);
      const limitOk = limit === undefined || ["1", "100", "0"].includes(limit);
      if (!tokenOk) expect = [401];
      else if (!channelOk) expect = [400];
      else if (ch === "user:someone-else") expect = [403];
      else if (!sinceOk || !limitOk) expect = [400];
      else expect = [200];
      return { label: `history ${params.toString().slice(0, 60)}`, method: "GET", path: `/v1/history?${params}`, headers, expect };
    }
    if (roll < 74) {
      const path = rng.pick([
        "/v1/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "//etc/passwd",
        "/v1/publish%00",
        "/\\..\\..\\windows\\win.ini",
        "/v1/history/../../../../etc/shadow",
        "/static/../../src/main.ts",
        "/%00",
        "/v1/publish/../../config/test.json",
        "/node_modules/.bin/bun",
        "/.git/config",
        "/v1/%ZZ",
        "/v1/history?channel=%E0%A4%A&token=%",
        "/dev/token?user=%00&tier=%ff",
        "/" + "a/".repeat(500),
      ]);
      return { label: `traversal ${path.slice(0, 40)}`, method: "GET", path, headers: {}, raw: true, expect: [400, 401, 404, 405] };
    }
    if (roll < 82) {
      const [path, allowed] = rng.pick([
        ["/v1/publish", "POST"],
        ["/v1/publish/batch", "POST"],
        ["/v1/history", "GET"],
        ["/health", "GET"],
        ["/ready", "GET"],
        ["/metrics", "GET"],
        ["/ws/stats", "GET"],
        ["/dev/token", "GET"],
      ] as const);
      const method = rng.pick(["PUT", "DELETE", "PATCH", "OPTIONS", allowed === "GET" ? "POST" : "GET"]);
      // OPTIONS is a CORS preflight: every known route answers it 204 (PROTOCOL §2 v1.1).
      return { label: `${method} ${path}`, method, path, headers: { ...auth }, expect: method === "OPTIONS" ? [204] : [405] };
    }
    if (roll < 88) {
      const user = rng.pick(["ok-user", "", "has space", "u".repeat(129), "caf\u00e9", "../x", "__proto__"]);
      const tier = rng.pick(["starter", "pro", "enterprise", "", "platinum", "__proto__", "constructor"]);
      const userOk = /^[A-Za-z0-9_\-.@=]{1,128}$/.test(user);
      const tierOk = ["starter", "pro", "enterprise"].includes(tier);
      return { label: `dev token ${user.slice(0, 10)}/${tier}`, method: "GET", path: `/dev/token?user=${encodeURIComponent(user)}&tier=${encodeURIComponent(tier)}`, headers: {}, expect: userOk && tierOk ? [200] : [400] };
    }
    if (roll < 94) {
      const token = rng.pick([undefined, ...ctx.badTokens]);
      return { label: "plain GET /v1/ws with a bad token", method: "GET", path: token === undefined ? "/v1/ws" : `/v1/ws?token=${encodeURIComponent(token)}`, headers: {}, expect: [401] };
    }
    const path = rng.pick(["/nope", "/v2/publish", "/v1", "/v1/", "/health/", "/HEALTH", "/v1/ws/x", "/favicon.ico", "/" + "z".repeat(2000), "/v1/publish;jsessionid=1"]);
    return { label: `unknown path ${path.slice(0, 30)}`, method: rng.pick(["GET", "POST"]), path, headers: {}, expect: [404] };
  })();

  // Big headers within Bun's 16 KiB limit, on any request: they change nothing.
  if (rng.chance(0.1)) request.headers["x-pad"] = "p".repeat(rng.int(1000, 8_000));
  if (rng.chance(0.05)) for (let i = 0; i < 60; i++) request.headers[`x-h${i}`] = String(i);
  return request;
}
