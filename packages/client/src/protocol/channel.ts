/** Channel grammar of PROTOCOL.md §4: `<kind>:<name>`. */
import { USER_ID_CHARS } from "./user-id.ts";

// The name part is a user id's grammar: `user:<id>` must fit every valid id.
export const CHANNEL = new RegExp(`^([a-z][a-z0-9_-]{0,31}):([${USER_ID_CHARS}]{1,128})$`);
export const EVENT_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

export interface ChannelName {
  readonly channel: string;
  readonly kind: string;
  readonly name: string;
}

/**
 * Parses a channel name, or returns null when it breaks the grammar.
 *
 * @example
 * parseChannel("job:42") // { channel: "job:42", kind: "job", name: "42" }
 * parseChannel("job:a..b") // null
 */
export function parseChannel(channel: unknown): ChannelName | null {
  if (typeof channel !== "string" || channel.length > 161) return null;
  const match = CHANNEL.exec(channel);
  if (!match || channel.includes("..")) return null;
  return { channel, kind: match[1]!, name: match[2]! };
}

/** Whether `name` is a valid event name (1–64 of `A-Z a-z 0-9 _ . : -`). */
export function isEventName(name: unknown): name is string {
  return typeof name === "string" && EVENT_NAME.test(name);
}

/** The kind part of a channel known to be valid. */
export function channelKind(channel: string): string {
  return channel.slice(0, channel.indexOf(":"));
}
