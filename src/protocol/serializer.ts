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

/** Serializes publish `data`; `undefined` becomes `null` as PROTOCOL §2 says. */
export function serializeData(data: unknown): string {
  return data === undefined ? "null" : JSON.stringify(data);
}
