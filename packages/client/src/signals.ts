/**
 * Tiered signal channels (PROTOCOL.md §4): `signals:<tier>`, joinable by users of that tier or a
 * higher one. Defined here so that the server's signals route and SDK users name them alike.
 */
import { TIERS, type Tier } from "./protocol/codes.ts";

/**
 * The channel that carries signals of `tier`.
 *
 * @example
 * signalChannel("pro"); // "signals:pro"
 */
export function signalChannel(tier: Tier): string {
  return `signals:${tier}`;
}

/**
 * The signal channels a user of `tier` may join: its own tier and every tier below. Throws
 * `TypeError` for an unknown tier.
 *
 * @example
 * for (const channel of signalsFor("pro")) client.subscribe(channel, onSignal); // signals:starter, signals:pro
 */
export function signalsFor(tier: Tier): string[] {
  const index = TIERS.indexOf(tier);
  if (index < 0) throw new TypeError(`Unknown tier ${JSON.stringify(tier)}: expected one of ${TIERS.join(", ")}`);
  return TIERS.slice(0, index + 1).map(signalChannel);
}
