/**
 * Translation between the engine's types and what the Lua scripts take and answer: the publish
 * script's arguments, its reply and pub/sub message, and stream entries. The formats are defined
 * by `redis-scripts.ts`; this file is their only reader and writer on the JS side.
 */
import { eventFrame } from "../protocol/serializer.ts";
import type { RedisKeys } from "./redis-keys.ts";
import type { PublishItem, PublishOutcome, StoredEvent } from "./types.ts";

/** Slack on Redis' own expiry of keys whose validity is judged by the engine clock. */
export const GC_SLACK_MS = 60_000;

/**
 * Splits `eventFrame`'s output around the offset, so the script can insert the offset it assigns
 * and the stored frame stays byte-identical to the serializer's.
 *
 * @example
 * frameHalves({ channel: "user:a", event: "x", dataJson: "{}", critical: false }, 1)
 * // ['{"type":"event","channel":"user:a","offset":', ',"event":"x","data":{},"ts":1}']
 */
export function frameHalves(item: Omit<PublishItem, "idempotencyKey" | "coalesce">, ts: number): [string, string] {
  const frame = eventFrame({ channel: item.channel, offset: 0, event: item.event, dataJson: item.dataJson, critical: item.critical, ts });
  // The channel grammar has no quote, so the first `","offset":` is the real one.
  const at = frame.indexOf('","offset":') + 11;
  if (at < 11 || frame.charCodeAt(at) !== 48) throw new TypeError("eventFrame no longer has a bare numeric offset");
  return [frame.slice(0, at), frame.slice(at + 1)];
}

/**
 * KEYS and ARGV of one PUBLISH script call: the items of one channel, in order.
 *
 * @example
 * const { keys, args } = publishCall(keys, "user:a", [item], Date.now(), { candidateEpoch: "e1", idempotencyTtlMs: 300_000, historySize: 1000, trimCap: 11_000, knownWatermark: 0 });
 */
export function publishCall(
  k: RedisKeys,
  channel: string,
  items: PublishItem[],
  ts: number,
  o: { candidateEpoch: string; idempotencyTtlMs: number; historySize: number; trimCap: number; knownWatermark: number },
): { keys: string[]; args: string[] } {
  const ck = k.channel(channel);
  const keys = k.fencedList(ck);
  const tsText = String(ts);
  const args = [
    o.candidateEpoch,
    tsText,
    String(o.idempotencyTtlMs),
    String(o.idempotencyTtlMs + GC_SLACK_MS),
    String(o.historySize),
    String(o.trimCap),
    ck.pubsub,
    String(items.length),
    String(o.knownWatermark),
  ];
  for (const it of items) {
    let idem = "0";
    if (it.idempotencyKey !== undefined) {
      keys.push(k.idempotency(channel, it.idempotencyKey));
      idem = String(keys.length);
    }
    const [prefix, suffix] = frameHalves(it, ts);
    const co = it.coalesce ?? "";
    // JS string lengths (UTF-16 units) so the subscriber can slice frames out of the message.
    args.push(idem, it.event, it.critical ? "1" : "0", co, co === "" ? "" : JSON.stringify(co), tsText, prefix, suffix, String(prefix.length + suffix.length));
  }
  return { keys, args };
}

/**
 * Reads the PUBLISH script's `{epoch, watermark, offset1, dupEpoch1, ...}` into outcomes, in item
 * order, and the dataset watermark after the call.
 */
export function readPublishReply(channel: string, reply: unknown): { outcomes: PublishOutcome[]; watermark: number } {
  const r = reply as string[];
  const epoch = r[0]!;
  const outcomes: PublishOutcome[] = [];
  for (let i = 2; i < r.length; i += 2) {
    const dup = r[i + 1]!;
    outcomes.push({ channel, offset: Number(r[i]), epoch: dup === "" ? epoch : dup, duplicate: dup !== "" });
  }
  return { outcomes, watermark: Number(r[1]) };
}

/**
 * Parses a pub/sub message of the publish script: `epoch watermark\n`, then records of
 * `offset\ncritical\nts\nevent\ncoalesceJson\nframeLength\n<frame>`, concatenated. Only the frame
 * (last, length-prefixed) may hold newlines; the coalesce key is JSON-escaped. A head without a
 * watermark (a node of the previous version) gives `watermark: null`.
 *
 * @example
 * parseMessage("user:a", 'e1 7\n1\n0\n5\nx\n\n2\n{}') // { epoch: "e1", watermark: 7, events: [{ channel: "user:a", offset: 1, event: "x", frame: "{}", … }] }
 */
export function parseMessage(channel: string, message: string): { epoch: string; watermark: number | null; events: StoredEvent[] } {
  const events: StoredEvent[] = [];
  const head = message.indexOf("\n");
  if (head < 0) throw new SyntaxError(`Malformed pub/sub message on ${channel}`);
  const space = message.lastIndexOf(" ", head);
  const watermark = space < 0 ? null : Number(message.slice(space + 1, head));
  if (watermark !== null && !Number.isSafeInteger(watermark)) throw new SyntaxError(`Malformed pub/sub message on ${channel}`);
  let i = head + 1;
  while (i < message.length) {
    const a = message.indexOf("\n", i);
    const b = message.indexOf("\n", a + 1);
    const c = message.indexOf("\n", b + 1);
    const d = message.indexOf("\n", c + 1);
    const e = message.indexOf("\n", d + 1);
    const f = message.indexOf("\n", e + 1);
    if (a < 0 || f < 0) throw new SyntaxError(`Malformed pub/sub message on ${channel}`);
    const end = f + 1 + Number(message.slice(e + 1, f));
    if (!(end <= message.length)) throw new SyntaxError(`Malformed pub/sub message on ${channel}`);
    events.push({
      channel,
      offset: Number(message.slice(i, a)),
      event: message.slice(c + 1, d),
      critical: message.charCodeAt(a + 1) === 49,
      coalesce: e === d + 1 ? null : (JSON.parse(message.slice(d + 1, e)) as string),
      ts: Number(message.slice(b + 1, c)),
      frame: message.slice(f + 1, end),
    });
    i = end;
  }
  return { epoch: message.slice(0, space < 0 ? head : space), watermark, events };
}

/** Turns stream entries `[id, [t, ts, e, event, f, frame, k?, coalesce?]]` into events. */
export function streamEntries(channel: string, critical: boolean, raw: unknown): StoredEvent[] {
  return (raw as [string, string[]][]).map(([id, f]) => ({
    channel,
    offset: parseInt(id, 10),
    event: f[3]!,
    critical,
    coalesce: f[6] === "k" ? f[7]! : null,
    ts: Number(f[1]),
    frame: f[5]!,
  }));
}

/** Merges the non-critical and critical pages (each sorted by offset), keeping the first `limit`. */
export function mergeByOffset(a: StoredEvent[], b: StoredEvent[], limit: number): StoredEvent[] {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  const out: StoredEvent[] = [];
  let i = 0;
  let j = 0;
  while (out.length < limit && (i < a.length || j < b.length)) {
    if (j >= b.length || (i < a.length && a[i]!.offset < b[j]!.offset)) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}
