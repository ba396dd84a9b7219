/**
 * Bodies of the API-key control routes of PROTOCOL.md §2 besides publishing: jobs, signals and
 * the v1.1 `disconnect`, `unsubscribe` and `presence`. Routes validate with these, and
 * `/openapi.json` is generated from them.
 */
import { z } from "zod";
import { TIERS } from "./codes.ts";
import { ChannelSchema, EventNameSchema } from "./publish.ts";

import { USER_ID, USER_ID_RULE } from "./user-id.ts";

/** A user id, the grammar of a token's `sub`. */
export const UserIdSchema = z.string().regex(USER_ID, `must be ${USER_ID_RULE} (a user id)`);

/** `POST /v1/jobs`. */
export const JobBodySchema = z.object({
  owner: UserIdSchema,
  simulate: z.boolean().optional(),
});

/** `POST /v1/signals`: `event` defaults to `signal`; the signal is stored critical. */
export const SignalBodySchema = z.object({
  tier: z.enum(TIERS),
  event: EventNameSchema.optional(),
  data: z.unknown().optional(),
});

/** `POST /v1/disconnect` (v1.1): `reason` travels in the close frame, which holds 123 bytes. */
export const DisconnectBodySchema = z.object({
  user: UserIdSchema,
  reason: z.string().max(123).optional(),
});

/** `POST /v1/unsubscribe` (v1.1). */
export const UnsubscribeBodySchema = z.object({
  user: UserIdSchema,
  channel: ChannelSchema,
});

/** `GET /v1/presence?channel=` (v1.1). */
export const PresenceQuerySchema = z.object({ channel: ChannelSchema });

/** At most this many users are listed by `/v1/presence`; `subscribers` is always the full count. */
export const PRESENCE_MAX_USERS = 1000;
