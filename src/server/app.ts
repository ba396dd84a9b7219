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
import { localControlBus } from "../engine/control-local.ts";
import { MemoryPresence } from "../engine/presence-memory.ts";
import { CircuitBreaker, ReadinessGate, type ReadinessCheck } from "../resilience/index.ts";
import { createJsonGuard } from "../protocol/json-guard.ts";
import type { Logger, Telemetry } from "../telemetry/index.ts";
import type { Context } from "./context.ts";
import { Control } from "./control-commands.ts";
import { controlRoutes } from "./control-routes.ts";
import { Admission } from "./admission.ts";
import { corsPolicy } from "./cors.ts";
import { errorMapping, toErrorResponse } from "./error-response.ts";
import { printDevHint } from "./dev-hint.ts";
import { AfterWrites } from "./after-writes.ts";
import { drainGrace, refuseWhileDraining } from "./drain.ts";
import { ExtensionSet, type Extension, type ExtensionContext } from "./extension.ts";
import { historyRoute } from "./history-route.ts";
import { openListener } from "./listen-error.ts";
import { Housekeeping } from "./housekeeping.ts";
import { NodeStats } from "./node-stats.ts";
import { startMetricsServer } from "./metrics-server.ts";
import { metricsRoute, opsRoutes } from "./ops-routes.ts";
import { publishBatchRoute, publishRoute } from "./publish-routes.ts";
import { streamRoutes } from "./stream-routes.ts";
import { Publisher } from "./publisher.ts";
import { refusalLog } from "./refusal-log.ts";
import { RouteTable } from "./route-table.ts";
import { systemScheduler, type Scheduler } from "./scheduler.ts";
import { gaugeSource, serverEvents, zeroSeries } from "./server-events.ts";
import { Sessions } from "./sessions.ts";
import { statsReport } from "./stats-report.ts";
import { upgrade } from "./upgrade.ts";
import { websocketHandler } from "./websocket.ts";
import { wsCheckRoute } from "./ws-check-route.ts";
import { statusPage } from "../web/status-page-route.ts";
import { adminPage } from "../web/admin-page-route.ts";

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
  /** Where `/metrics` is served when `server.metricsPort` is set. */
  readonly metricsUrl: URL | undefined;
  readonly ctx: Context;
  /**
   * SIGTERM behaviour (drain.ts): `/ready` 503 and new upgrades and publishes 503 at once,
   * `reconnect` + 1012 to every client; after `server.drainGraceMs` the listener closes; flush, stop.
   */
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
  const scheduler = deps.scheduler ?? systemScheduler;
  const manager = new ConnectionManager({ scheduler, slots: engine.localSlots });
  engine.localSlots?.countOpenIn(manager);
  const gate = new ReadinessGate();
  const extensions = new ExtensionSet(log);
  // One immediate per turn records what the publish path measured, after its writes (after-writes.ts).
  const later = new AfterWrites();
  const events = serverEvents(metrics, stats, extensions, later);
  const storeBreaker = new CircuitBreaker({ ...breakerOptions(config, log, engine.name), isFailure: (e) => e instanceof StoreUnavailableError });
  const jwksBreaker = new CircuitBreaker(breakerOptions(config, log, "jwks"));
  // A single node keeps presence in memory and runs control commands itself.
  const presence = engine.presence ?? new MemoryPresence();
  const bus = engine.control ?? localControlBus();
  const publisher = new Publisher({ broker: engine, breaker: storeBreaker, metrics, stats, extensions, later, maxEventFrameBytes: config.limits.maxEventFrameBytes });
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
  const verify = createTokenVerifier({
    jwtSecret: config.auth.jwtSecret,
    jwksUrl: config.auth.jwksUrl,
    audience: config.auth.audience,
    issuer: config.auth.issuer,
    clockToleranceS: config.auth.clockToleranceS,
    guardJwks: (fetch) => jwksBreaker.execute(fetch),
    now,
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
    onMembership: (ws, channel, delta) => presence.change(channel, ws.data.user, delta),
    streams: streamLog,
  });
  const sessions = new Sessions({ store: engine, manager, resumeWindowMs: config.delivery.resumeWindowMs, events, log, control: bus, slots: engine });
  const control = new Control({ bus, manager, hub, sessions });
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
    events,
    extensions,
    criticalEvents: new Set(config.delivery.criticalEvents),
    metrics,
    jsonGuard: createJsonGuard({ timeoutMs: config.delivery.serializeTimeoutMs, maxDepth: config.limits.maxJsonDepth + 2 }),
    connections: () => manager.connections(),
    verify,
    // Own keys only: a user named `__proto__` or `constructor` must not get Object's members as a tier.
    tierOf: async (user) => (await extensions.tierOf(user)) ?? (Object.hasOwn(config.auth.tiers, user) ? config.auth.tiers[user]! : null),
    server: () => server,
  };
  extensions.add([await statusPage(), await adminPage(ctx), ...(deps.extensions?.(ctx) ?? [])]);
  const breakers = [storeBreaker, ...(config.auth.jwksUrl ? [jwksBreaker] : []), ...extensions.breakers()];
  const report = () => statsReport({ node: config.cluster.nodeId, engine: engine.kind, gate, manager, hub, stats, breakers: () => breakers, extensions });
  // Optional: a node that cannot reach the JWKS still serves its clients and verifies tokens by the
  // keys it holds; and every node shares the one identity provider, so failing readiness would only
  // take them all out of the load balancer at once.
  const authChecks: ReadinessCheck[] = verify.checkKeys
    ? [{ name: "jwks", timeoutMs: config.resilience.readinessGroupsMs.optional, required: false, run: verify.checkKeys }]
    : [];
  const housekeeping = new Housekeeping({ config, now, manager, hub, gate, metrics, stats, events, log, broker: engine, storeBreaker, cluster: engine.cluster, statsReport: report, checks: () => [...authChecks, ...extensions.checks()], onDirty: sessions.onDirty });

  const errors = errorMapping(log, storeBreaker, config.server.retryAfterS);
  const cors = corsPolicy(config.server.allowedOrigins);
  const admission = new Admission({
    config,
    gate,
    cors,
    verify: ctx.verify,
    tierOf: ctx.tierOf,
    connections: () => manager.size,
    slots: engine,
    now,
    peer: (req) => server.requestIP(req)?.address ?? "",
  });
  const upgradeParts = { admission, refused: refusalLog({ log, now }) };
  // The Bun.serve below takes no `tls`: every request it answers came over plain http.
  const table = new RouteTable({ metrics, errors, cors, scheme: "http", later });
  table.known("/v1/ws", ["GET"]);
  const routes = {
    ...opsRoutes({ config, telemetry, gate, probe: () => housekeeping.probe(), statsReport: report, cluster: engine.cluster }),
    "/v1/publish": { POST: (req: Request) => publishRoute(ctx, req) },
    "/v1/publish/batch": { POST: (req: Request) => publishBatchRoute(ctx, req) },
    "/v1/history": { GET: historyRoute(ctx) },
    ...controlRoutes({ config, control, presence, records: engine, log }),
    ...streamRoutes(ctx),
  };
  for (const [path, methods] of [...Object.entries(routes), ...extensions.routes()]) {
    table.add(path, path.startsWith("/v1/") ? refuseWhileDraining(methods, { gate, retryAfterS: config.server.retryAfterS }) : methods);
  }
  table.add("/v1/ws/check", { GET: wsCheckRoute(admission) }, { anyOrigin: true });
  table.addStatic(extensions.staticRoutes());

  await engine.start(hub.deliver);
  const where = { host: config.server.host, port: config.server.port, hostSetting: "server.host, env HOST", portSetting: "server.port, env PORT", onFail: () => engine.close() };
  server = openListener(where, () => Bun.serve<ConnData>({
    hostname: config.server.host,
    port: config.server.port,
    // Every body is read through http.ts's readers, which answer a JSON 413 past our limits (before
    // reading when Content-Length says so, while streaming otherwise); Bun's own cap would answer a
    // bare 413 first, so it is set out of reach.
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    routes: table.routes as never,
    fetch: (req) => {
      const url = new URL(req.url);
      if (url.pathname === "/v1/ws" && req.method === "GET") return table.serve("/v1/ws", req, () => upgrade(ctx, upgradeParts, req, url));
      return table.fallback(req, url);
    },
    error: (error) => toErrorResponse(error, errors),
    websocket: websocketHandler(ctx),
  }));
  hub.attach(bunTransport(server));
  let metricsServer: Server<undefined> | undefined;
  try {
    if (config.server.metricsPort !== undefined) metricsServer = startMetricsServer({ hostname: config.server.host, port: config.server.metricsPort, metrics: metricsRoute({ telemetry }) });
  } catch (error) {
    await server.stop(true); // a taken metrics port must not leave the main port serving
    throw error;
  }
  await extensions.start();
  telemetry.observe(gaugeSource({ manager, hub, breakers: () => breakers, gate, extensions }));
  zeroSeries(metrics);
  await housekeeping.start(scheduler);

  const url = new URL(`http://${config.server.host === "0.0.0.0" ? "127.0.0.1" : config.server.host}:${server.port}`);
  const metricsUrl = metricsServer && new URL(`http://${url.hostname}:${metricsServer.port}/metrics`);
  log.info("listening", { url: url.href, node: config.cluster.nodeId, env: config.env, engine: engine.kind, ...(metricsUrl ? { metrics: metricsUrl.href } : {}) });
  printDevHint(config, url);

  let stopped = false;
  const shutdown = async (closeSockets: boolean) => {
    if (stopped) return;
    stopped = true;
    housekeeping.stop();
    await extensions.stop();
    await server.stop(closeSockets);
    await metricsServer?.stop(true);
    ctx.jsonGuard.close();
    await engine.close();
  };

  return {
    server,
    url,
    metricsUrl,
    ctx,
    async drain() {
      await drainGrace({ gate, manager, scheduler, graceMs: config.server.drainGraceMs, spreadMs: config.server.drainSpreadMs, log });
      await shutdown(false);
      await telemetry.shutdown();
      log.info("drained");
    },
    stop: () => shutdown(true),
  };
}
