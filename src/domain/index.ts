/**
 * Feature modules plugged into the server: jobs, tiered signals, user tiers and the agent. One
 * extension wires them to the context; `options` lets tests inject the tier provider, the breaker's
 * clock and `fetch`.
 */
import type { Extension, ExtensionContext, RpcHandler } from "../server/extension.ts";
import { ErrorCode } from "../protocol/codes.ts";
import { RpcError } from "../protocol/rpc-error.ts";
import { CircuitBreaker, Deadline } from "../resilience/index.ts";
import type { PublishItem } from "../engine/types.ts";
import { analyzeJob, createAgentRpc } from "./agent.ts";
import { AgentBackend, isAgentFailure } from "./agent-backend.ts";
import { AgentRunTracker } from "./agent-tracker.ts";
import { JobRegistry } from "./job-registry.ts";
import { Jobs } from "./jobs.ts";
import { signalsRoute } from "./signals.ts";
import { TierCache, type TierProvider } from "./tier-cache.ts";

export { signalChannelsFor } from "./signals.ts";
export type { TierProvider } from "./tier-cache.ts";

const MAX_SIMULATIONS_PER_USER = 3;

/** What tests (and a deployment with its own tier source) may inject. */
export interface DomainOptions {
  /** Where tiers of tokens without a `tier` claim come from. @default `config.auth.tiers` */
  tierProvider?: TierProvider;
  /** Background tier refresh. @default 60_000 */
  tierRefreshMs?: number;
  /** The agent breaker's and the job registry's clock. @default ctx.now */
  now?: () => number;
  /** Used for agent backend calls. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/**
 * Builds the domain extension. `src/main.ts` and the test server pass this function as it is;
 * tests that inject something wrap it.
 *
 * @example
 * startCourier({ ..., extensions: (ctx) => createExtensions(ctx, { tierProvider: myProvider }) });
 */
export function createExtensions(ctx: ExtensionContext, options: DomainOptions = {}): Extension[] {
  const { config, log } = ctx;
  const now = options.now ?? ctx.now;
  const stopping = new AbortController();
  const breaker = new CircuitBreaker({
    name: "agent",
    failureThreshold: config.resilience.breakerFailures,
    windowMs: config.resilience.breakerWindowMs,
    recoveryMs: config.resilience.breakerRecoveryMs,
    now,
    isFailure: isAgentFailure,
    onStateChange: (from, to) => log.warn("breaker state", { breaker: "agent", from, to }),
  });
  const backend = config.agent.url ? new AgentBackend({ url: config.agent.url, breaker, fetch: options.fetch }) : null;
  const publish = (items: PublishItem[]) => ctx.publisher.publish(items);
  const tracker = new AgentRunTracker({
    timeoutMs: config.agent.executionTimeoutMs,
    trackPublished: config.agent.trackPublishedRuns,
    fail: (channel, data) => publish([{ channel, event: "agent_failed", dataJson: JSON.stringify(data), critical: true }]),
    onError: (error, channel, run) => log.warn("agent_failed not stored", { channel, run, error: (error as Error).message }),
    onEnded: (result, ms) => {
      ctx.metrics.agentRuns.add(1, { result });
      ctx.metrics.agentRunDuration.record(ms / 1000, { result });
    },
  });
  const registry = new JobRegistry({
    ttlMs: config.delivery.criticalRetentionMs,
    now,
    records: ctx.records,
  });
  const jobs = new Jobs(ctx, { registry, analyze: (request, deadline) => analyzeJob(backend, request, deadline) });
  // Without a provider the tiers are config.auth.tiers, which app.ts reads synchronously: no cache, no
  // batch. The batch waits a macrotask (≥ 1 ms) per upgrade, which held a connect storm's handshakes.
  const tiers = options.tierProvider === undefined ? null : new TierCache({
    provider: options.tierProvider,
    refreshMs: options.tierRefreshMs,
    onError: (error) => log.warn("tier provider failed", { error: (error as Error).message }),
    onChange: (changed) => {
      // New tiers apply to later subscribes of open connections; channels already joined stay.
      for (const ws of ctx.connections()) {
        const data = ws.data;
        if (!data.tierFromToken && changed.has(data.user)) data.tier = changed.get(data.user) ?? "starter";
      }
    },
  });
  const agentRpc = createAgentRpc({
    backend,
    tracker,
    publish,
    streams: ctx.streams,
    isCritical: (event) => ctx.criticalEvents.has(event),
    demoStepMs: config.agent.demoStepMs,
    signal: stopping.signal,
    onDemoError: (error, run) => log.warn("demo agent run failed", { run, error: (error as Error).message }),
  });
  // Local methods first (the status page's "simulated job" button); everything else is the agent's.
  const rpc: RpcHandler = async (call) => {
    if (call.method === "jobs.simulate") {
      // Any user may start one from the status page: cap what one user can keep running.
      if (jobs.runningFor(call.user) >= MAX_SIMULATIONS_PER_USER) {
        throw new RpcError(ErrorCode.LimitExceeded, `at most ${MAX_SIMULATIONS_PER_USER} simulated jobs at a time`);
      }
      try {
        return await jobs.create(call.user, true);
      } catch {
        throw new RpcError(ErrorCode.Unavailable, "the store is unavailable; no job was created");
      }
    }
    return agentRpc(call);
  };

  // A subscriber cancelled a stream: the backend is its producer (the demo agent listens itself).
  const stopCancels = backend
    ? ctx.streams.onCancel(({ channel, stream, user }) => {
        backend
          .call({ user, method: "stream.cancel", data: { channel, stream } }, Deadline.after(config.agent.rpcTimeoutMs))
          .catch((error: unknown) => log.warn("stream.cancel not delivered to the agent backend", { channel, stream, error: (error as Error).message }));
      })
    : () => {};

  let sweep: ReturnType<typeof setInterval> | undefined;
  return [
    {
      routes: {
        "/v1/jobs": { POST: jobs.route },
        "/v1/signals": { POST: (req) => signalsRoute(ctx, req) },
      },
      rpc,
      jobOwner: (id) => registry.ownerOf(id),
      tierOf: tiers ? (user) => tiers.tierOf(user) : undefined,
      // Backends may publish agent and job events themselves: both trackers watch every stored one.
      published: (items) => {
        tracker.observe(items);
        jobs.observe(items);
      },
      connectionOpened: (data) => {
        if (!data.tierFromToken) tiers?.opened(data.user);
      },
      connectionClosed: (data) => {
        if (!data.tierFromToken) tiers?.closed(data.user);
      },
      jobsInFlight: () => registry.inFlight(),
      breakers: backend ? [breaker] : [],
      checks: backend ? [{ name: "agent", timeoutMs: config.resilience.readinessGroupsMs.optional, required: false, run: () => backend.check() }] : [],
      stats: () => ({
        jobs: { inFlight: registry.inFlight(), simulating: jobs.running, known: registry.size },
        agent: { backend: backend !== null, activeRuns: tracker.active, timedOut: tracker.failed },
        tiers: { cached: tiers?.size ?? 0, providerCalls: tiers?.providerCalls ?? 0 },
      }),
      start() {
        tiers?.start();
        sweep = setInterval(() => registry.sweep(), 60_000);
        sweep.unref?.();
      },
      stop() {
        stopping.abort();
        stopCancels();
        clearInterval(sweep);
        jobs.stop();
        tracker.stop();
        tiers?.stop();
      },
    },
  ];
}
