/**
 * Assembles Courier around one `Bun.serve`: routes of PROTOCOL.md §2, the WebSocket handler, the
 * periodic sweeps, readiness gating and graceful drain. Everything with I/O or time is passed in;
 * `src/main.ts` builds the real ones.
 */
import type { Server } from "bun";
import type { Config } from "../config/schema.ts";
import type { Engine, PublishItem, PublishOutcome } from "../engine/types.ts";
import { StoreUnavailableError } from "../engine/types.ts";
import { createTokenVerifier, signToken } from "../auth/tokens.ts";
import { bearer, keyMatches } from "../auth/keys.ts";
import { ConnectionManager } from "../connection/manager.ts";
import { sessionStateOf, type ConnData } from "../connection/conn-data.ts";
import type { JobOwnerLookup } from "../connection/permissions.ts";
import { Hub } from "../delivery/hub.ts";
import { BreakerOpenError, CircuitBreaker, CIRCUIT_STATE_VALUE, ReadinessGate, runChecks, type ReadinessCheck, type ReadinessResult } from "../resilience/index.ts";
import { channelKind } from "../protocol/channel.ts";
import { createJsonGuard } from "../protocol/json-guard.ts";
import { CloseCode, TIERS, type Tier } from "../protocol/codes.ts";
import { PROMETHEUS_CONTENT_TYPE, type Logger, type Telemetry } from "../telemetry/index.ts";
import type { Context, RpcHandler } from "./context.ts";
import { HttpError, httpError, json } from "./http.ts";
import { NodeStats } from "./node-stats.ts";
import { historyRoute } from "./history-route.ts";
import { openApiRoute } from "./openapi.ts";
import { publishBatchRoute, publishRoute } from "./publish-routes.ts";
import { upgrade } from "./upgrade.ts";
import { websocketHandler } from "./websocket.ts";
import { statusPage } from "../web/status-page-route.ts";

/** A feature module (jobs, signals, agent, status page) plugged into the server. */
export interface Extension {
  routes?: Record<string, Partial<Record<"GET" | "POST", (ctx: Context, req: Request, url: URL) => Promise<Response> | Response>>>;
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
  /** Called once the server listens, with the context. */
  start?(ctx: Context): void | Promise<void>;
  stop?(): void | Promise<void>;
}

export interface CourierDeps {
  config: Config;
  engine: Engine;
  log: Logger;
  telemetry: Telemetry;
  now?: () => number;
  /** Builds feature modules once the context exists (they publish through it). */
  extensions?: (ctx: Context) => Extension[];
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

const SWEEP_MS = 1000;
const READINESS_LOOP_MS = 2000;

export async function startCourier(deps: CourierDeps): Promise<Courier> {
  const { config, engine, log, telemetry } = deps;
  const now = deps.now ?? Date.now;
  const metrics = telemetry.metrics;
  const stats = new NodeStats();
  const manager = new ConnectionManager();
  const gate = new ReadinessGate();
  const breakerOptions = (name: string) => ({
    name,
    failureThreshold: config.resilience.breakerFailures,
    windowMs: config.resilience.breakerWindowMs,
    recoveryMs: config.resilience.breakerRecoveryMs,
    onStateChange: (from: string, to: string) => log.warn("breaker state", { breaker: name, from, to }),
  });
  const storeBreaker = new CircuitBreaker({ ...breakerOptions(engine.kind === "redis" ? "redis" : "store"), isFailure: (e) => e instanceof StoreUnavailableError });
  const jwksBreaker = new CircuitBreaker(breakerOptions("jwks"));
  const breakers: CircuitBreaker[] = [storeBreaker];
  if (config.auth.jwksUrl) breakers.push(jwksBreaker);

  const hub = new Hub({
    engine,
    now,
    recentPerChannel: config.delivery.recentPerChannel,
    memoryCapBytes: config.delivery.memoryCapBytes,
    replayLimit: config.delivery.replayLimit,
    onFanout: (_channel, events, subscribers, latencyMs) => {
      if (subscribers > 0) metrics.deliveries.add(events * subscribers);
      metrics.fanoutLatency.record(Math.max(0, latencyMs) / 1000);
    },
    onBackpressure: () => scheduleSlowSweep(),
    onReplay: (n) => metrics.replayedEvents.add(n),
  });

  const jsonGuard = createJsonGuard({ timeoutMs: config.delivery.serializeTimeoutMs, maxDepth: config.limits.maxJsonDepth + 2 });
  let server!: Server<ConnData>;
  const extensions: Extension[] = [];
  /** Calls a hook on every extension; a throwing hook is logged and never breaks the caller. */
  const notify = (hook: string, call: (ext: Extension) => void) => {
    for (const ext of extensions) {
      try {
        call(ext);
      } catch (error) {
        log.error("extension hook failed", { hook, error: (error as Error).message });
      }
    }
  };
  const ctx: Context = {
    config,
    engine,
    hub,
    manager,
    stats,
    log,
    now,
    gate,
    criticalEvents: new Set(config.delivery.criticalEvents),
    verify: createTokenVerifier({
      jwtSecret: config.auth.jwtSecret,
      jwksUrl: config.auth.jwksUrl,
      audience: config.auth.audience,
      issuer: config.auth.issuer,
      clockToleranceS: config.auth.clockToleranceS,
      guardJwks: (fetch) => jwksBreaker.execute(fetch),
    }),
    // Own keys only: a user named `__proto__` or `constructor` must not get Object's members as a tier.
    tierOf: async (user) => {
      for (const ext of extensions) {
        const tier = await ext.tierOf?.(user);
        if (tier) return tier;
      }
      return Object.hasOwn(config.auth.tiers, user) ? config.auth.tiers[user]! : null;
    },
    jobOwner: async (id) => {
      for (const ext of extensions) {
        const owner = await ext.jobOwner?.(id);
        if (owner) return owner;
      }
      return null;
    },
    server: () => server,
    publish: async (items: PublishItem[]): Promise<PublishOutcome[]> => {
      try {
        const outcomes = await storeBreaker.execute(() => engine.publish(items));
        for (const item of items) metrics.publishes.add(1, { kind: channelKind(item.channel), class: item.critical ? "critical" : "normal" });
        stats.publishes += items.length;
        notify("published", (ext) => ext.published?.(items, outcomes));
        return outcomes;
      } catch (error) {
        if (error instanceof BreakerOpenError) throw new StoreUnavailableError(error.message, { cause: error });
        throw error;
      }
    },
    onUpgradeRefused: (reason) => metrics.connectionAttempts.add(1, { result: reason as never }),
    onResume: (hit) => metrics.sessionResumes.add(1, { result: hit ? "hit" : "miss" }),
    onOpen: (data, connectMs) => {
      metrics.connectionAttempts.add(1, { result: "accepted" });
      metrics.connectDuration.record(connectMs / 1000);
      notify("connectionOpened", (ext) => ext.connectionOpened?.(data));
    },
    onClosed: (data, code) => {
      metrics.closes.add(1, { code });
      notify("connectionClosed", (ext) => ext.connectionClosed?.(data));
    },
    onReject: (reason) => {
      stats.rejectedFrames++;
      metrics.framesRejected.add(1, { reason });
    },
    onConfirmed: (samples) => {
      metrics.confirmations.add(samples.length, { result: "confirmed" });
      for (const ms of samples) metrics.confirmationTime.record(ms / 1000);
    },
    jsonGuard,
    onSerialize: (path, ms) => metrics.serializerDuration.record(ms / 1000, { path }),
    onSerializeTimeout: () => metrics.serializerTimeouts.add(1),
    onRpc: (method, result, ms) => metrics.rpcDuration.record(ms / 1000, { method: method.slice(0, 32), result }),
  };
  extensions.push(await statusPage(), ...(deps.extensions?.(ctx) ?? []));
  ctx.rpc = extensions.find((e) => e.rpc)?.rpc;
  for (const ext of extensions) breakers.push(...(ext.breakers ?? []));

  const sweepHooks = {
    oldestUnacked: (channel: string, after: number) => hub.oldestUnacked(channel, after),
    onClose: (code: CloseCode, _data: ConnData, detail?: { unconfirmed?: number }) => {
      if (code === CloseCode.SlowConsumer) {
        stats.slowConsumerCloses++;
        metrics.backpressureCloses.add(1);
      }
      if (code === CloseCode.Stale && detail?.unconfirmed) {
        stats.timedOut += detail.unconfirmed;
        metrics.confirmations.add(detail.unconfirmed, { result: "timed_out" });
      }
    },
    onDirty: engine.kind === "redis"
      ? (data: ConnData) => {
          engine.saveSession(data.sessionId, sessionStateOf(data), config.delivery.resumeWindowMs).catch(() => {});
        }
      : undefined,
  };
  const sweepOptions = {
    heartbeatMs: config.server.heartbeatS * 1000,
    confirmTimeoutMs: config.delivery.confirmTimeoutMs,
    probeTimeoutMs: config.delivery.probeTimeoutMs,
    slowConsumerBytes: config.limits.slowConsumerBytes,
  };
  let slowSweepQueued = false;
  function scheduleSlowSweep() {
    if (slowSweepQueued) return;
    slowSweepQueued = true;
    setTimeout(() => {
      slowSweepQueued = false;
      manager.sweepSlow(config.limits.slowConsumerBytes, sweepHooks);
    }, 50);
  }

  const checks = (): ReadinessCheck[] => [
    { name: engine.kind === "redis" ? "redis" : "store", timeoutMs: config.resilience.readinessGroupsMs.store, required: true, run: () => engine.check() },
    ...extensions.flatMap((e) => e.checks ?? []),
  ];
  let lastReadiness: ReadinessResult | undefined;
  const readiness = async () => {
    const result = await runChecks(checks(), { budgetMs: config.resilience.readinessBudgetMs });
    lastReadiness = result;
    gate.record(result);
    return result;
  };

  const bufferSeen = { criticalKept: 0, nonCriticalDropped: 0, overflows: 0 };
  const statsBody = () => {
    const buffer = hub.bufferStats();
    return {
      node: config.cluster.nodeId,
      engine: engine.kind,
      status: gate.phase,
      readiness: lastReadiness?.status ?? "unknown",
      connections: manager.size,
      users: manager.users,
      byTier: manager.byTier(),
      subscriptions: hub.subscriptionsByKind(),
      publishes: stats.publishes,
      resumes: { hits: stats.resumeHits, misses: stats.resumeMisses },
      confirmations: stats.confirmations(),
      buffer: { criticalKept: buffer.criticalKept, nonCriticalDropped: buffer.nonCriticalDropped + trimmedDropped, overflows: buffer.overflows, bytes: buffer.bytes, channels: buffer.channels },
      slowConsumerCloses: stats.slowConsumerCloses,
      rejectedFrames: stats.rejectedFrames,
      refusedUpgrades: stats.refusedUpgrades,
      breakers: Object.fromEntries(breakers.map((b) => [b.name, b.snapshot()])),
      ...Object.assign({}, ...extensions.map((e) => e.stats?.() ?? {})),
    };
  };
  let trimmedDropped = 0;

  type Handler = (ctx: Context, req: Request, url: URL) => Promise<Response> | Response;
  const timed = (route: string, handler: Handler) => async (req: Request): Promise<Response> => {
    const started = performance.now();
    let response: Response;
    try {
      response = await handler(ctx, req, new URL(req.url));
    } catch (error) {
      response = toErrorResponse(error, log);
    }
    metrics.httpRequestDuration.record((performance.now() - started) / 1000, {
      "http.request.method": req.method,
      "http.route": route,
      "http.response.status_code": response.status,
    });
    return response;
  };
  /** Methods per route path, for the 405 (with `Allow`) of a known path asked with another method. */
  const allowed = new Map<string, string>();
  const methods = (route: string, table: Partial<Record<"GET" | "POST", Handler>>) => {
    allowed.set(route, Object.keys(table).join(", "));
    const out: Record<string, (req: Request) => Promise<Response>> = {};
    for (const [method, handler] of Object.entries(table)) out[method] = timed(route, handler!);
    return out;
  };
  const admin = (req: Request) => {
    if (!keyMatches(bearer(req), config.auth.adminKey)) throw new HttpError(401, "a valid admin key is required");
  };

  const routes: Record<string, unknown> = {
    "/health": methods("/health", { GET: () => json({ status: "ok" }) }),
    "/ready": methods("/ready", {
      GET: async () => {
        const result = await readiness();
        const ok = result.status !== "not_ready" && gate.phase === "ready";
        return json({ status: gate.phase === "draining" ? "draining" : result.status, checks: result.checks }, ok ? 200 : 503, ok ? undefined : { "retry-after": String(config.server.retryAfterS) });
      },
    }),
    "/metrics": methods("/metrics", { GET: async () => new Response(await telemetry.render(), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store", "x-content-type-options": "nosniff" } }) }),
    "/ws/stats": methods("/ws/stats", {
      GET: async (_ctx, req, url) => {
        admin(req);
        if (url.searchParams.get("scope") === "cluster" && "clusterStats" in engine) {
          const nodes = await (engine as Engine & { clusterStats(): Promise<unknown[]> }).clusterStats();
          return json({ scope: "cluster", nodes, self: statsBody() });
        }
        return json(statsBody());
      },
    }),
    "/v1/publish": methods("/v1/publish", { POST: publishRoute }),
    "/v1/publish/batch": methods("/v1/publish/batch", { POST: publishBatchRoute }),
    "/v1/history": methods("/v1/history", { GET: historyRoute }),
    "/openapi.json": methods("/openapi.json", { GET: openApiRoute }),
    "/dev/token": methods("/dev/token", {
      GET: async (_ctx, _req, url) => {
        if (config.env !== "development" && config.env !== "test") throw new HttpError(404, "not found");
        const user = url.searchParams.get("user") ?? "dev-user";
        const tier = (url.searchParams.get("tier") ?? "starter") as Tier;
        if (!/^[A-Za-z0-9_\-.@=]{1,128}$/.test(user)) throw new HttpError(400, "user must be 1–128 of A-Z a-z 0-9 _ - . @ =");
        if (!TIERS.includes(tier)) throw new HttpError(400, `tier must be one of ${TIERS.join(", ")}`);
        if (!config.auth.jwtSecret) throw new HttpError(404, "development tokens need COURIER_JWT_SECRET");
        return json({ token: await signToken(config.auth.jwtSecret, { sub: user, tier }, config.auth.devTokenTtlS) });
      },
    }),
  };
  for (const ext of extensions) {
    for (const [path, table] of Object.entries(ext.routes ?? {})) routes[path] = methods(path, table);
    Object.assign(routes, ext.staticRoutes ?? {});
  }

  await engine.start(hub.deliver);
  server = Bun.serve<ConnData>({
    hostname: config.server.host,
    port: config.server.port,
    // Our own limits answer 413 with a JSON body; Bun's cap is only a backstop.
    maxRequestBodySize: config.limits.maxPublishBodyBytes * 8,
    routes: routes as never,
    fetch: async (req) => {
      const url = new URL(req.url);
      if (url.pathname === "/v1/ws") {
        const started = performance.now();
        let response: Response | undefined;
        try {
          response = await upgrade(ctx, req, url);
        } catch (error) {
          response = toErrorResponse(error, log);
        }
        if (response) {
          metrics.httpRequestDuration.record((performance.now() - started) / 1000, { "http.request.method": req.method, "http.route": "/v1/ws", "http.response.status_code": response.status });
        }
        return response;
      }
      const allow = allowed.get(url.pathname);
      if (allow && !allow.split(", ").includes(req.method)) return httpError(405, `${req.method.slice(0, 16)} is not allowed here; use ${allow}`, { headers: { allow } });
      return httpError(404, `no route for ${req.method.slice(0, 16)} ${url.pathname.slice(0, 100)}`);
    },
    error: (error) => toErrorResponse(error, log),
    websocket: websocketHandler(ctx),
  });
  hub.attach(server);
  for (const ext of extensions) await ext.start?.(ctx);

  telemetry.observe({
    connectionsByTier: () => manager.byTier(),
    subscriptionsByKind: () => hub.subscriptionsByKind(),
    breakerStates: () => Object.fromEntries(breakers.map((b) => { const s = b.snapshot(); return [s.name, CIRCUIT_STATE_VALUE[s.state]]; })),
    ready: () => ({ status: gate.phase === "ready" ? (lastReadiness?.status ?? "ready") : gate.phase, value: gate.accepting() ? 1 : 0 }),
    jobsInFlight: () => extensions.reduce((n, e) => n + (e.jobsInFlight?.() ?? 0), 0),
  });
  // Series that should read 0 rather than be absent until their first event.
  for (const result of ["accepted", "unauthorized", "user_limit", "unavailable"] as const) metrics.connectionAttempts.add(0, { result });
  for (const result of ["confirmed", "timed_out"] as const) metrics.confirmations.add(0, { result });
  for (const result of ["hit", "miss"] as const) metrics.sessionResumes.add(0, { result });
  for (const outcome of ["critical_kept", "noncritical_dropped", "overflow"] as const) metrics.bufferEvents.add(0, { outcome });
  metrics.backpressureCloses.add(0);
  metrics.serializerTimeouts.add(0);
  metrics.replayedEvents.add(0);
  metrics.deliveries.add(0);

  const sweep = setInterval(() => {
    const t = now();
    manager.sweep(t, sweepOptions, sweepHooks);
    hub.prune(t - Math.max(60_000, 4 * config.delivery.confirmTimeoutMs));
    const buffer = hub.bufferStats();
    metrics.bufferEvents.add(buffer.criticalKept - bufferSeen.criticalKept, { outcome: "critical_kept" });
    metrics.bufferEvents.add(buffer.nonCriticalDropped - bufferSeen.nonCriticalDropped, { outcome: "noncritical_dropped" });
    metrics.bufferEvents.add(buffer.overflows - bufferSeen.overflows, { outcome: "overflow" });
    Object.assign(bufferSeen, { criticalKept: buffer.criticalKept, nonCriticalDropped: buffer.nonCriticalDropped, overflows: buffer.overflows });
  }, SWEEP_MS);
  const trim = setInterval(() => {
    engine.trim(now()).then(
      ({ dropped }) => {
        trimmedDropped += dropped;
        if (dropped > 0) metrics.bufferEvents.add(dropped, { outcome: "noncritical_dropped" });
      },
      (error) => log.warn("trim failed", { error: (error as Error).message }),
    );
  }, config.store.cleanupIntervalMs);
  // Cluster mode: each node reports into the engine with a TTL, for `/ws/stats?scope=cluster`.
  const reporter = "reportStats" in engine
    ? setInterval(() => {
        (engine as Engine & { reportStats(stats: object, ttlMs: number): Promise<void> })
          .reportStats(statsBody(), 3 * config.cluster.statsIntervalMs)
          .catch((error) => log.debug("stats report failed", { error: (error as Error).message }));
      }, config.cluster.statsIntervalMs)
    : undefined;
  let readinessRunning = false;
  const readinessLoop = setInterval(() => {
    if (readinessRunning || gate.phase === "draining") return;
    readinessRunning = true;
    readiness().finally(() => (readinessRunning = false));
  }, READINESS_LOOP_MS);

  const first = await readiness();
  if (first.status !== "not_ready") gate.markReady();
  else {
    // Not ready yet: the loop keeps checking and opens the gate when the store answers.
    const opener = setInterval(() => {
      if (lastReadiness && lastReadiness.status !== "not_ready" && gate.phase === "starting") {
        gate.markReady();
        clearInterval(opener);
      }
    }, READINESS_LOOP_MS);
  }

  const url = new URL(`http://${config.server.host === "0.0.0.0" ? "127.0.0.1" : config.server.host}:${server.port}`);
  log.info("listening", { url: url.href, node: config.cluster.nodeId, env: config.env, engine: engine.kind });

  let stopped = false;
  const stopTimers = () => {
    clearInterval(sweep);
    clearInterval(trim);
    clearInterval(readinessLoop);
    clearInterval(reporter);
  };
  const shutdown = async (closeSockets: boolean) => {
    if (stopped) return;
    stopped = true;
    stopTimers();
    for (const ext of extensions) await ext.stop?.();
    await server.stop(closeSockets);
    jsonGuard.close();
    await engine.close();
  };

  return {
    server,
    url,
    ctx,
    async drain() {
      if (gate.phase !== "draining") gate.markDraining();
      const connections = [...manager.connections()];
      const spread = config.server.drainSpreadMs;
      log.info("draining", { connections: connections.length, spreadMs: spread });
      connections.forEach((ws, i) => {
        const after = Math.round((spread * i) / Math.max(1, connections.length));
        ws.send(JSON.stringify({ type: "reconnect", reason: "restart", after }));
        ws.close(CloseCode.ServiceRestart, "server restart");
      });
      await shutdown(false);
      await telemetry.shutdown();
      log.info("drained");
    },
    stop: () => shutdown(true),
  };
}

function toErrorResponse(error: unknown, log: Logger): Response {
  if (error instanceof HttpError) return httpError(error.status, error.message, error.options);
  if (error instanceof StoreUnavailableError) return httpError(503, "the store is unavailable", { retryAfterS: 2 });
  log.error("request failed", { error: error instanceof Error ? { name: error.name, message: error.message } : String(error) });
  return httpError(500, "internal error");
}
