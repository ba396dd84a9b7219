/**
 * The fast-path serializer: an event frame is built once per publish, by concatenation, around
 * `data` stringified once. The same string is stored, replayed and sent to every subscriber.
 */

/** What a frame is built from. `dataJson` is `data` already serialized (never re-parsed here). */
export interface FrameParts {
  channel: string;
  offset: number;
  event: string;
  dataJson: string;
  critical: boolean;
  ts: number;
}

/**
 * Builds the event frame text. Channel and event names are validated against grammars that need
 * no JSON escaping, so they are quoted directly.
 *
 * @example
 * eventFrame({ channel: "user:a", offset: 1, event: "x", dataJson: "{}", critical: false, ts: 1 })
 * // '{"type":"event","channel":"user:a","offset":1,"event":"x","data":{},"ts":1}'
 */
export function eventFrame(p: FrameParts): string {
  return (
    '{"type":"event","channel":"' + p.channel +
    '","offset":' + p.offset +
    ',"event":"' + p.event +
    '","data":' + p.dataJson +
    (p.critical ? ',"critical":true,"ts":' : ',"ts":') + p.ts + "}"
  );
}

/** The frame around empty names and data, at the largest offset and a 13-digit `ts` (until 2286). */
const FRAME_OVERHEAD = { plain: eventFrame({ channel: "", offset: Number.MAX_SAFE_INTEGER, event: "", dataJson: "", critical: false, ts: 1e12 }).length, critical: eventFrame({ channel: "", offset: Number.MAX_SAFE_INTEGER, event: "", dataJson: "", critical: true, ts: 1e12 }).length };

/**
 * The UTF-8 size in bytes of the event frame `eventFrame()` will build for these parts, at the
 * largest offset it could be given, without building it: the check of `limits.maxEventFrameBytes`
 * runs before the offset exists, and must not serialize the payload a second time.
 *
 * @example
 * eventFrameBytes({ channel: "user:a", event: "x", dataJson: "{}", critical: false }); // 102
 */
export function eventFrameBytes(p: Omit<FrameParts, "offset" | "ts">): number {
  // Channel and event names are ASCII by their grammars: one byte per character.
  return (p.critical ? FRAME_OVERHEAD.critical : FRAME_OVERHEAD.plain) + p.channel.length + p.event.length + Buffer.byteLength(p.dataJson, "utf8");
}

/** Serializes publish `data`; `undefined` becomes `null` as PROTOCOL §2 says. */
export function serializeData(data: unknown): string {
  return data === undefined ? "null" : JSON.stringify(data);
}
