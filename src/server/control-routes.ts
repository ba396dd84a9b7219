/**
 * The control API of PROTOCOL.md §2 (v1.1), API key: `POST /v1/disconnect`, `POST /v1/unsubscribe`
 * and `GET /v1/presence`. The first two act on every node through the control bus
 * (`control-commands.ts`) and count what was acted on across the cluster; presence reads the
 * counts the hub keeps as subscriptions change. Bodies are checked with the zod schemas that
 * `/openapi.json` is generated from; errors go to the one mapper.
 */
import type { Config } from "../config/schema.ts";
import type { Presence, RecordStore } from "../engine/types.ts";
import { DisconnectBodySchema, PRESENCE_MAX_USERS, PresenceQuerySchema, UnsubscribeBodySchema } from "../protocol/control.ts";
import type { Logger } from "../telemetry/index.ts";
import type { Control, ControlCommand } from "./control-commands.ts";
import type { RouteUrl } from "./extension.ts";
import { checkIdempotencyKey, json, readJson, requireKey, validated } from "./http.ts";

/** Control bodies are two short strings. */
const BODY_LIMIT = 4 * 1024;

export interface ControlRoutesOptions {
  config: Config;
  control: Pick<Control, "run">;
  presence: Presence;
  /** Where the first answer to an `Idempotency-Key` is kept, for every node to find. */
  records: RecordStore;
  log: Logger;
}

/**
 * The three routes, for the route table.
 *
 * @example
 * for (const [path, methods] of Object.entries(controlRoutes({ config, control, presence, log }))) table.add(path, methods);
 */
export function controlRoutes(o: ControlRoutesOptions) {
  const { config } = o;
  const run = async (command: ControlCommand) => {
    const result = await o.control.run(command);
    // The command reached them and they act on it; only their counts are missing from the answer.
    if (result.missing > 0) o.log.warn("control command: nodes did not answer in time", { kind: command.kind, missing: result.missing });
    return result.count;
  };
  /** A retried call with the same `Idempotency-Key` (within the idempotency TTL) answers the first answer. */
  const once = async (req: Request, route: string, act: () => Promise<object>): Promise<Response> => {
    const key = req.headers.get("idempotency-key");
    if (key === null) return json(await act());
    checkIdempotencyKey(key);
    const record = `idem:${route}:${key}`;
    const first = await o.records.getRecord(record);
    if (first !== null) return json(JSON.parse(first));
    const answer = await act();
    await o.records.putRecord(record, JSON.stringify(answer), config.delivery.idempotencyTtlMs).catch((error: Error) => {
      o.log.warn("idempotency record not stored", { route, error: error.message });
    });
    return json(answer);
  };
  return {
    "/v1/disconnect": {
      POST: async (req: Request) => {
        requireKey(req, config.auth.apiKey);
        const body = validated(DisconnectBodySchema, await readJson(req, BODY_LIMIT, config.limits.maxJsonDepth));
        const command: ControlCommand = { kind: "disconnect", user: body.user };
        if (body.reason !== undefined) command.reason = body.reason;
        return once(req, "disconnect", async () => ({ closed: await run(command) }));
      },
    },
    "/v1/unsubscribe": {
      POST: async (req: Request) => {
        requireKey(req, config.auth.apiKey);
        const body = validated(UnsubscribeBodySchema, await readJson(req, BODY_LIMIT, config.limits.maxJsonDepth));
        return once(req, "unsubscribe", async () => ({ unsubscribed: await run({ kind: "unsubscribe", user: body.user, channel: body.channel }) }));
      },
    },
    "/v1/presence": {
      GET: async (req: Request, url: RouteUrl) => {
        requireKey(req, config.auth.apiKey);
        const { channel } = validated(PresenceQuerySchema, { channel: url.searchParams.get("channel") ?? undefined });
        const page = await o.presence.read(channel, PRESENCE_MAX_USERS);
        return json({ channel, subscribers: page.subscribers, users: page.users });
      },
    },
  };
}
