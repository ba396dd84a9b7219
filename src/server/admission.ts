/**
 * Who may open a WebSocket now (PROTOCOL.md §3): the one decision behind `GET /v1/ws` (upgrade.ts)
 * and `GET /v1/ws/check` (ws-check-route.ts), so the check answers exactly the refusal an upgrade
 * would get. In order, cheapest first: not accepting (503), a foreign `Origin` (403), too many
 * upgrades from this address (429, before any token is verified), the token (401, or 503 when the
 * JWKS is down), a full node (503), then the per-user limit (429) when a slot is taken.
 */
import type { Principal, VerifyToken } from "../auth/tokens.ts";
import { TokenError } from "../auth/tokens.ts";
import type { Config } from "../config/schema.ts";
import { IpRateLimiter } from "../connection/ip-rate-limit.ts";
import type { ConnectionSlots } from "../engine/types.ts";
import { RefusalReason, type Tier } from "../protocol/codes.ts";
import { clientIp, trustedProxies, type TrustedProxies } from "./client-ip.ts";
import type { Gate } from "./context.ts";
import type { Cors } from "./cors.ts";

/**
 * An upgrade (or its check) is refused; the one error mapper answers `status` with
 * `{"error","message","reason"}` and `Retry-After` on 429/503.
 */
export class AdmissionRefused extends Error {
  override readonly name = "AdmissionRefused";
  constructor(
    readonly status: 401 | 403 | 429 | 503,
    readonly reason: RefusalReason,
    message: string,
    /** Seconds for `Retry-After` (429/503). */
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

/** What the decision reads. */
export interface AdmissionOptions {
  config: Config;
  gate: Gate;
  cors: Pick<Cors, "allows">;
  verify: VerifyToken;
  tierOf(user: string): Promise<Tier | null>;
  /** Connections open (and reserved) on this node. */
  connections(): number;
  slots: ConnectionSlots;
  now: () => number;
  /** The socket peer's address of `req` (`server.requestIP`). */
  peer(req: Request): string;
}

/**
 * @example
 * const admission = new Admission({ config, gate, cors, verify, tierOf, connections: () => manager.size, slots: engine, now, peer });
 * const principal = await admission.admit(req, token, admission.clientIp(req)); // throws AdmissionRefused
 * await admission.takeSlot(principal.user);
 */
export class Admission {
  readonly #o: AdmissionOptions;
  readonly #ips: IpRateLimiter;
  readonly #trusted: TrustedProxies;

  constructor(options: AdmissionOptions) {
    this.#o = options;
    this.#ips = new IpRateLimiter({ perSecond: options.config.limits.upgradesPerIpPerSec });
    this.#trusted = trustedProxies(options.config.server.trustedProxies);
  }

  /** The client's address: the peer, or what trusted proxies say in `X-Forwarded-For`. */
  clientIp(req: Request): string {
    return clientIp(req, this.#o.peer(req), this.#trusted);
  }

  /**
   * Everything but the per-user limit: the principal (its tier resolved) an upgrade would get.
   * Counts one upgrade against `ip`.
   *
   * @throws {AdmissionRefused}
   */
  async admit(req: Request, token: string | null, ip: string): Promise<Principal> {
    const { config } = this.#o;
    const retryAfterS = config.server.retryAfterS;
    if (!this.#o.gate.accepting()) throw new AdmissionRefused(503, RefusalReason.Unavailable, "not accepting connections right now", retryAfterS);
    if (!this.#o.cors.allows(req.headers.get("origin"))) throw new AdmissionRefused(403, RefusalReason.ForbiddenOrigin, "origin not allowed");
    const waitMs = this.#ips.take(ip, this.#o.now());
    if (waitMs > 0) throw new AdmissionRefused(429, RefusalReason.RateLimited, `at most ${config.limits.upgradesPerIpPerSec} upgrades per second from one address`, Math.ceil(waitMs / 1000));

    let principal: Principal;
    try {
      principal = await this.#o.verify(token);
    } catch (error) {
      if (error instanceof TokenError && error.reason === "unavailable") throw new AdmissionRefused(503, RefusalReason.Unavailable, error.message, retryAfterS);
      const expired = error instanceof TokenError && error.reason === "expired";
      throw new AdmissionRefused(401, expired ? RefusalReason.TokenExpired : RefusalReason.Unauthorized, error instanceof TokenError ? error.message : "invalid token");
    }
    if (!principal.tierFromToken) {
      try {
        principal.tier = (await this.#o.tierOf(principal.user)) ?? principal.tier;
      } catch {
        // A failing tier provider must not refuse the user: the default tier is the safe side.
      }
    }
    if (this.#o.connections() >= config.limits.connectionsPerNode) throw new AdmissionRefused(503, RefusalReason.Unavailable, "this node is full", retryAfterS);
    return principal;
  }

  /**
   * Takes one of the user's connection slots (cluster-wide on Redis).
   *
   * @throws {AdmissionRefused} 429 when the user has them all, 503 when the slots cannot be read.
   */
  async takeSlot(user: string): Promise<void> {
    const { limits, server } = this.#o.config;
    let ok: boolean;
    try {
      ok = await this.#o.slots.acquireConnection(user, limits.connectionsPerUser);
    } catch {
      throw new AdmissionRefused(503, RefusalReason.Unavailable, "connection limits are unavailable", server.retryAfterS);
    }
    if (ok) return;
    // The engine may know when a slot frees (a crashed node's slots lapse): the better Retry-After.
    const knownMs = this.#o.slots.connectionRetryAfterMs?.(user);
    throw new AdmissionRefused(429, RefusalReason.TooManyConnections, `at most ${limits.connectionsPerUser} connections per user`, knownMs ? Math.max(1, Math.ceil(knownMs / 1000)) : server.retryAfterS);
  }

  /** Gives a slot back; never throws. */
  async releaseSlot(user: string): Promise<void> {
    await this.#o.slots.releaseConnection(user).catch(() => {});
  }
}
