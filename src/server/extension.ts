/**
 * Feature modules (jobs, signals, agent, status page) plug into the server as `Extension`s; the
 * `ExtensionSet` is the one place that asks them: notify hooks that cannot break their caller,
 * first answers for lookups, and everything gathered (routes, checks, breakers, stats).
 * `src/domain/` and `src/web/` import this file, never `app.ts`.
 */
import type { ServerWebSocket } from "bun";
import type { Config } from "../config/schema.ts";
import type { ConnData } from "../connection/conn-data.ts";
import type { StreamService } from "../delivery/stream-service.ts";
import type { JobOwnerLookup } from "../connection/permissions.ts";
import type { Broker, PublishItem, PublishOutcome, RecordStore } from "../engine/types.ts";
import type { Tier } from "../protocol/codes.ts";
import type { CircuitBreaker, ReadinessCheck } from "../resilience/index.ts";
import type { Logger, Metrics } from "../telemetry/index.ts";
import type { BodyContext } from "./http.ts";
import type { Publisher } from "./publisher.ts";

/** Answers an `rpc` frame; throws `RpcError` (src/protocol/rpc-error.ts) for a coded failure. */
export type RpcHandler = (call: { user: string; method: string; data: unknown; signal: AbortSignal; deadlineMs: number }) => Promise<unknown>;

/**
 * What a handler reads of its request's URL: the query. The route table parses it on first read
 * only, because most requests (every publish) read none of it and a `new URL` per request was
 * 2.5 % of the publish path's samples.
 */
export type RouteUrl = Pick<URL, "searchParams">;

/** One HTTP route's handler; a thrown `HttpError` (or any error) is mapped by the server's one error mapper. */
export type RouteHandler = (req: Request, url: RouteUrl) => Promise<Response> | Response;

/** Handlers of one path by method. */
export type MethodTable = Partial<Record<"GET" | "POST", RouteHandler>>;

/** What a feature module is built with: the server's parts it may use, nothing of its wiring. */
export interface ExtensionContext extends BodyContext {
  readonly log: Logger;
  readonly now: () => number;
  /** The one publish pipeline: every event a feature stores goes through it. */
  readonly publisher: Publisher;
  /** A channel's position (a new job answers its channel's epoch) and history (the admin page's browser). */
  readonly broker: Pick<Broker, "position" | "history">;
  readonly records: RecordStore;
  /** Agent streams (PROTOCOL §8): the demo agent streams its answers through them. */
  readonly streams: StreamService;
  /** Event names that are critical whatever the publisher says. */
  readonly criticalEvents: ReadonlySet<string>;
  /** The instruments features record into (agent runs). */
  readonly metrics: Pick<Metrics, "agentRuns" | "agentRunDuration">;
  /** This node's open connections (a tier change updates their tiers). */
  connections(): Iterable<ServerWebSocket<ConnData>>;
}

/** A feature module plugged into the server. */
export interface Extension {
  routes?: Record<string, MethodTable>;
  /** Static routes handed to Bun.serve as they are (HTML imports). */
  staticRoutes?: Record<string, unknown>;
  rpc?: RpcHandler;
  jobOwner?: JobOwnerLookup;
  /** The tier of a user whose token names none (a cached provider); null leaves it to the next. */
  tierOf?: (user: string) => Tier | null | Promise<Tier | null>;
  /** Sees every publish the store accepted, whoever published it (API, simulator, agent). */
  published?(items: readonly PublishItem[], outcomes: readonly PublishOutcome[]): void;
  connectionOpened?(data: ConnData): void;
  connectionClosed?(data: ConnData): void;
  jobsInFlight?: () => number;
  stats?: () => Record<string, unknown>;
  checks?: ReadinessCheck[];
  breakers?: CircuitBreaker[];
  /** Called once the server listens. */
  start?(): void | Promise<void>;
  stop?(): void | Promise<void>;
}

/**
 * Every extension of one server, asked in the order given.
 *
 * @example
 * const extensions = new ExtensionSet(log);
 * extensions.add([await statusPage(), ...createExtensions(ctx)]);
 * extensions.published(items, outcomes); // a throwing hook is logged, the publish carries on
 * const owner = await extensions.jobOwner("j1"); // the first extension that knows
 */
export class ExtensionSet {
  readonly #list: Extension[] = [];
  readonly #log: Logger;
  #rpc: RpcHandler | undefined;

  /** Extensions are added once the context they are built with exists. */
  constructor(log: Logger) {
    this.#log = log;
  }

  add(list: readonly Extension[]): void {
    this.#list.push(...list);
    this.#rpc = this.#list.find((e) => e.rpc)?.rpc;
  }

  /** The first extension's rpc handler, if any. */
  get rpc(): RpcHandler | undefined {
    return this.#rpc;
  }

  published(items: readonly PublishItem[], outcomes: readonly PublishOutcome[]): void {
    this.#notify("published", (ext) => ext.published?.(items, outcomes));
  }

  connectionOpened(data: ConnData): void {
    this.#notify("connectionOpened", (ext) => ext.connectionOpened?.(data));
  }

  connectionClosed(data: ConnData): void {
    this.#notify("connectionClosed", (ext) => ext.connectionClosed?.(data));
  }

  /** The first tier an extension names for `user`, or null. */
  async tierOf(user: string): Promise<Tier | null> {
    for (const ext of this.#list) {
      const tier = await ext.tierOf?.(user);
      if (tier) return tier;
    }
    return null;
  }

  /** The first owner an extension names for job `id`, or null. A throwing lookup rejects. */
  jobOwner: JobOwnerLookup = async (id) => {
    for (const ext of this.#list) {
      const owner = await ext.jobOwner?.(id);
      if (owner) return owner;
    }
    return null;
  };

  routes(): [string, MethodTable][] {
    return this.#list.flatMap((e) => Object.entries(e.routes ?? {}));
  }

  staticRoutes(): Record<string, unknown> {
    return Object.assign({}, ...this.#list.map((e) => e.staticRoutes ?? {}));
  }

  checks(): ReadinessCheck[] {
    return this.#list.flatMap((e) => e.checks ?? []);
  }

  breakers(): CircuitBreaker[] {
    return this.#list.flatMap((e) => e.breakers ?? []);
  }

  stats(): Record<string, unknown> {
    return Object.assign({}, ...this.#list.map((e) => e.stats?.() ?? {}));
  }

  jobsInFlight(): number {
    return this.#list.reduce((n, e) => n + (e.jobsInFlight?.() ?? 0), 0);
  }

  async start(): Promise<void> {
    for (const ext of this.#list) await ext.start?.();
  }

  async stop(): Promise<void> {
    for (const ext of this.#list) await ext.stop?.();
  }

  /** Calls a hook on every extension; a throwing hook is logged and never breaks the caller. */
  #notify(hook: string, call: (ext: Extension) => void): void {
    for (const ext of this.#list) {
      try {
        call(ext);
      } catch (error) {
        this.#log.error("extension hook failed", { hook, error: (error as Error).message });
      }
    }
  }
}
