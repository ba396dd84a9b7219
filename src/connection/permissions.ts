/** Who may join which channel (PROTOCOL.md §4). */
import type { Principal } from "../auth/tokens.ts";
import { isTier, tierReaches } from "../protocol/codes.ts";
import type { ChannelName } from "../protocol/channel.ts";

/** Looks up a job's owner; null when the job is unknown. */
export type JobOwnerLookup = (jobId: string) => string | null | Promise<string | null>;

/**
 * Whether `principal` may join `channel`: `user:<sub>` only that user, `job:<id>` the job's owner,
 * `signals:<tier>` users of that tier or higher, `public:<name>` anyone, and any channel listed in
 * the token's `channels` claim.
 *
 * @example
 * await mayJoin(principal, parseChannel("public:news")!, () => null) // true
 */
export async function mayJoin(principal: Principal, channel: ChannelName, jobOwner: JobOwnerLookup): Promise<boolean> {
  if (principal.channels.has(channel.channel)) return true;
  switch (channel.kind) {
    case "public":
      return true;
    case "user":
      return channel.name === principal.user;
    case "signals":
      return isTier(channel.name) && tierReaches(principal.tier, channel.name);
    case "job":
      return (await jobOwner(channel.name)) === principal.user;
    default:
      return false;
  }
}
