/**
 * Assembles Courier around one `Bun.serve` from named parts — the publisher (publisher.ts), the
 * sessions (sessions.ts), the extensions (extension.ts), the routes (ops-routes.ts, the publish and
 * history routes, all in one route-table.ts with one error mapper), the periodic work
 * (housekeeping.ts) — and drains it. Everything with I/O or time is passed in; `src/main.ts`
 * builds the real ones.
 */
import type { Server } from "bun";
import type { Config } from "../config/schema.ts";
import { StoreUnavailableError, type Engine } from "../engine/types.ts";
import { createTokenVerifier } from "../auth/tokens.ts";
import { ConnectionManager } from "../connection/manager.ts";
import type { ConnData } from "../connection/conn-data.ts";
import { Hub } from "../delivery/hub.ts";
import { StreamLog } from "../delivery/stream-log.ts";
import { StreamService } from "../delivery/stream-service.ts";
import { bunTransport, type BunSocket } from "../delivery/bun-transport.ts";
import { CircuitBreaker, ReadinessGate } from "../resilience/index.ts";
import { createJsonGuard } from "../protocol/json-guard.ts";
import type { Logger, Telemetry } from "../telemetry/index.ts";
import type { Context } from "./context.ts";
import { toErrorResponse } from "./error-response.ts";
import { printDevHint } from "./dev-hint.ts";
import { ExtensionSet, type Extension, type ExtensionContext } from "./extension.ts";
import { historyRoute } from "./history-route.ts";
import { Housekeeping } from "./housekeeping.ts";
import { NodeStats } from "./node-stats.ts";
import { opsRoutes } from "./ops-routes.ts";
import { publishBatchRoute, publishRoute } from "./publish-routes.ts";
import { streamRoutes } from "./stream-routes.ts";
import { Publisher } from "./publisher.ts";
import { RouteTable } from "./route-table.ts";
import { systemScheduler, type Scheduler } from "./scheduler.ts";
import { gaugeSource, serverEvents, zeroSeries } from "./server-events.ts";
import { Sessions } from "./sessions.ts";
import { statsReport } from "./stats-report.ts";
import { upgrade } from "./upgrade.ts";
import { websocketHandler } from "./websocket.ts";
import { statusPage } from "../web/status-page-route.ts";

export type { Extension } from "./extension.ts";

export interface CourierDeps {
  config: Config;
  engine: Engine;
  log: Logger;
  telemetry: Telemetry;
  now?: () => number;
  /** Runs the periodic work. @default systemScheduler (global timers) */
  scheduler?: Scheduler;
  /** Builds feature modules once the context exists (they publish through it). */
  extensions?: (ctx: ExtensionContext) => Extension[];
}

export interface Courier {
  readonly server: Server<ConnData>;
  readonly url: URL;
  readonly ctx: Context;
  /** SIGTERM behaviour: refuse upgrades, `reconnect` + 1012 to every client, flush, stop. */
  drain(): Promise<void>;
  /** Immediate stop (tests). */
  stop(): Promise<void>;
}

function breakerOptions(config: Config, log: Logger, name: string) {
  return {
    name,
    failureThreshold: config.resilience.breakerFailures,
    windowMs: config.resilience.breakerWindowMs,
    recoveryMs: config.resilience.breakerRecoveryMs,
    onStateChange: (from: string, to: string) => log.warn("breaker state", { breaker: name, from, to }),
  };
}

export async function startCourier(deps: CourierDeps): Promise<Courier> {
  const { config, engine, log, telemetry } = deps;
  const now = deps.now ?? Date.now;
  const metrics = telemetry.metrics;
  const stats = new NodeStats();
  const manager = new ConnectionManager();
  const gate = new ReadinessGate();
  const extensions = new ExtensionSet(log);
  const events = serverEvents(metrics, stats, extensions);
  const storeBreaker = new CircuitBreaker({ ...breakerOptions(config, log, engine.name), isFailure: (e) => e instanceof StoreUnavailableError });
  const jwksBreaker = new CircuitBreaker(breakerOptions(config, log, "jwks"));
  const publisher = new Publisher({ broker: engine, breaker: storeBreaker, metrics, stats, extensions });
  const streams = new StreamService({
    publish: (items) => publisher.publish(items),
    records: engine,
    broker: engine,
    retentionMs: config.delivery.criticalRetentionMs,
    onStarted: () => events.streamStarted(),
    onEnded: (status) => events.streamEnded(status),
    onAppends: (n) => events.streamAppended(n),
  });
  const streamLog = new StreamLog({
    loader: { openStreams: (channel) => streams.openStreams(channel), history: (channel, after, limit) => engine.history(channel, after, limit) },
    onSnapshot: (textLength) => events.streamSnapshot(textLength),
  });
  // Built before housekeeping, which it asks for slow-consumer sweeps: the hook runs only once serving.
  const hub: Hub<BunSocket> = new Hub<BunSocket>({
    engine,
    now,
    recentPerChannel: config.delivery.recentPerChannel,
    memoryCapBytes: config.delivery.memoryCapBytes,
    replayLimit: config.delivery.replayLimit,
    onFanout: (_channel, n, subscribers, latencyMs) => events.fannedOut(n, subscribers, latencyMs),
    onBackpressure: () => housekeeping.slowSweepSoon(),
    onReplay: (n) => events.replayed(n),
    streams: streamLog,
  });
  const sessions = new Sessions({ store: engine, manager, resumeWindowMs: config.delivery.resumeWindowMs, events, log });
  let server!: Server<ConnData>;
  const ctx: Context = {
    config,
    log,
    now,
    publisher,
    streams,
    broker: engine,
    records: engine,
    slots: engine,
    sessions,
    hub,
    manager,
    stats,
    gate,
    events,
    extensions,
    criticalEvents: new Set(config.delivery.criticalEvents),
    jsonGuard: createJsonGuard({ timeoutMs: config.delivery.serializeTimeoutMs, maxDepth: config.limits.maxJsonDepth + 2 }),
    connections: () => manager.connections(),
    verify: createTokenVerifier({
      jwtSecret: config.auth.jwtSecret,
      jwksUrl: config.auth.jwksUrl,
      audience: config.auth.audience,
      issuer: config.auth.issuer,
      clockToleranceS: config.auth.clockToleranceS,
      guardJwks: (fetch) => jwksBreaker.execute(fetch),
    }),
    // Own keys only: a user named `__proto__` or `constructor` must not get Object's members as a tier.
    tierOf: async (user) => (await extensions.tierOf(user)) ?? (Object.hasOwn(config.auth.tiers, user) ? config.auth.tiers[user]! : null),
    server: () => server,
  };
  extensions.add([await statusPage(), ...(deps.extensions?.(ctx) ?? [])]);
  const breakers = [storeBreaker, ...(config.auth.jwksUrl ? [jwksBreaker] : []), ...extensions.breakers()];
  const report = () => statsReport({ node: config.cluster.nodeId, engine: engine.kind, gate, manager, hub, stats, breakers: () => breakers, extensions });
  const housekeeping = new Housekeeping({ config, now, manager, hub, gate, metrics, stats, events, log, broker: engine, cluster: engine.cluster, statsReport: report, checks: () => extensions.checks(), onDirty: sessions.onDirty });

  const errors = { log, retryAfterS: config.server.retryAfterS };
  const table = new RouteTable({ metrics, errors });
  const routes = {
    ...opsRoutes({ config, telemetry, gate, probe: () => housekeeping.probe(), statsReport: report, cluster: engine.cluster }),
    "/v1/publish": { POST: (req: Request) => publishRoute(ctx, req) },
    "/v1/publish/batch": { POST: (req: Request) => publishBatchRoute(ctx, req) },
    "/v1/history": { GET: (req: Request, url: URL) => historyRoute(ctx, req, url) },
    ...streamRoutes(ctx),
  };
  for (const [path, methods] of [...Object.entries(routes), ...extensions.routes()]) table.add(path, methods);
  table.addStatic(extensions.staticRoutes());

  await engine.start(hub.deliver);
  server = Bun.serve<ConnData>({
    hostname: config.server.host,
    port: config.server.port,
    // Our own limits answer 413 with a JSON body; Bun's cap is only a backstop.
    maxRequestBodySize: config.limits.maxPublishBodyBytes * 8,
    routes: table.routes as never,
    fetch: (req) => {
      const url = new URL(req.url);
      if (url.pathname === "/v1/ws") return table.serve("/v1/ws", req, () => upgrade(ctx, req, url));
      return table.fallback(req, url);
    },
    error: (error) => toErrorResponse(error, errors),
    websocket: websocketHandler(ctx),
  });
  hub.attach(bunTransport(server));
  await extensions.start();
  telemetry.observe(gaugeSource({ manager, hub, breakers: () => breakers, gate, extensions }));
  zeroSeries(metrics);
  await housekeeping.start(deps.scheduler ?? systemScheduler);

  const url = new URL(`http://${config.server.host === "0.0.0.0" ? "127.0.0.1" : config.server.host}:${server.port}`);
  log.info("listening", { url: url.href, node: config.cluster.nodeId, env: config.env, engine: engine.kind });
  printDevHint(config, url);

  let stopped = false;
  const shutdown = async (closeSockets: boolean) => {
    if (stopped) return;
    stopped = true;
    housekeeping.stop();
    await extensions.stop();
    await server.stop(closeSockets);
    ctx.jsonGuard.close();
    await engine.close();
  };

  return {
    server,
    url,
    ctx,
    async drain() {
      if (gate.phase !== "draining") gate.markDraining();
      const told = manager.reconnectAll(config.server.drainSpreadMs);
      log.info("draining", { connections: told, spreadMs: config.server.drainSpreadMs });
      await shutdown(false);
      await telemetry.shutdown();
      log.info("drained");
    },
    stop: () => shutdown(true),
  };
}
