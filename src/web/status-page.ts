/**
 * The status page's script: a CourierClient drives the Live/Offline/Connecting badge, the event
 * feed (recent history first, then live), recoveries per channel, the user's tier signals, the
 * agent's growing answer (PROTOCOL §8, with a Stop button) and the connection stats; buttons run the
 * demo agent and a simulated job over rpc.
 *
 * The token arrives in the page URL (PROTOCOL §2) and is moved at once to `sessionStorage`, off the
 * address bar and history; the page itself never puts it in a URL it fetches or connects to
 * (history reads send it as `Authorization`).
 *
 * Positions are kept in memory only: a reload subscribes without `since`, so the server sends the
 * text so far of an answer in progress as one snapshot (§8) and the page shows it at once.
 */
import { CourierClient, memoryOffsetStore, signalsFor, TIERS, type AgentStream, type CourierEvent, type Position, type Tier } from "../../packages/client/src/index.ts";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const LABELS = { connecting: "Connecting", live: "Live", offline: "Offline" } as const;
const FEED_MAX = 200;
/** Events of each channel's recent history shown when the page opens. */
const HISTORY_SHOWN = 20;
const TOKEN_KEY = "courier:token";

/** The claims the page shows; the server decides what they allow. */
function tokenClaims(token: string): { user: string; tier: Tier } | null {
  try {
    const payload = JSON.parse(atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")));
    if (typeof payload.sub !== "string") return null;
    // A token without a tier claim gets its tier from the server's provider; starter's signals are open to every tier.
    return { user: payload.sub, tier: TIERS.includes(payload.tier) ? payload.tier : "starter" };
  } catch {
    return null;
  }
}

/** The token from the URL (then removed from it) or from this tab's earlier visit. */
function takeToken(): string | null {
  const params = new URLSearchParams(location.search);
  const fromUrl = params.get("token");
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", `${location.pathname}${rest ? `?${rest}` : ""}${location.hash}`);
  }
  return fromUrl ?? sessionStorage.getItem(TOKEN_KEY);
}

/** Where to start `channel` so its last {@link HISTORY_SHOWN} events are replayed, and the top they end at. */
async function recentStart(channel: string, token: string): Promise<{ since: Position; top: number } | undefined> {
  // A position past any top answers the channel's head (offset, epoch) without events.
  const res = await fetch(`/v1/history?channel=${encodeURIComponent(channel)}&since=${Number.MAX_SAFE_INTEGER}`, {
    headers: { authorization: `Bearer ${token}` },
  }).catch(() => null);
  if (!res?.ok) return undefined;
  const head = (await res.json()) as { epoch: string; offset: number };
  return { since: { epoch: head.epoch, offset: Math.max(0, head.offset - HISTORY_SHOWN) }, top: head.offset };
}

function showNoToken(): void {
  $("no-token").hidden = false;
  $("status").dataset.status = "offline";
  $("status").textContent = "No token";
  $<HTMLFormElement>("dev-token-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const user = $<HTMLInputElement>("dev-user").value;
    const tier = $<HTMLSelectElement>("dev-tier").value;
    const res = await fetch(`/dev/token?user=${encodeURIComponent(user)}&tier=${encodeURIComponent(tier)}`);
    if (!res.ok) {
      const error = $("dev-token-error");
      error.hidden = false;
      error.textContent = res.status === 404 ? "Development tokens are off on this server: pass ?token=<jwt>." : `Could not get a token (${res.status}).`;
      return;
    }
    const { token } = (await res.json()) as { token: string };
    const claims = tokenClaims(token);
    if (!claims) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("no-token").hidden = true;
    start(token, claims.user, claims.tier);
  });
}

function start(token: string, user: string, tier: Tier): void {
  $("app").hidden = false;
  $("user").textContent = user;
  const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`;
  const client = new CourierClient({ url: wsUrl, token, store: memoryOffsetStore() });
  let received = 0;

  client.on("status", ({ status, reason, polling }) => {
    const badge = $("status");
    badge.dataset.status = status;
    badge.textContent = LABELS[status];
    $("stat-status").textContent = reason ? `${status} (${reason})` : status;
    $("stat-polling").textContent = polling ? "on" : "off";
    $("stat-session").textContent = client.session ?? "—";
  });
  const feed = $("feed");
  const addToFeed = (li: HTMLLIElement) => {
    feed.prepend(li);
    while (feed.children.length > FEED_MAX) feed.lastElementChild!.remove();
  };
  // Recoveries per channel: how many, and the last verdict; each one also marked in the feed.
  const recoveries = new Map<string, { count: number; item: HTMLLIElement }>();
  client.on("recovery", ({ channel, recovered, reason }) => {
    const verdict = recovered ? "recovered" : `not recovered (${reason ?? "unknown"})`;
    let entry = recoveries.get(channel);
    if (!entry) {
      if (recoveries.size === 0) $("recoveries").replaceChildren();
      entry = { count: 0, item: document.createElement("li") };
      entry.item.dataset.channel = channel;
      $("recoveries").append(entry.item);
      recoveries.set(channel, entry);
    }
    entry.count++;
    entry.item.dataset.count = String(entry.count);
    entry.item.textContent = `${channel}: ${verdict} (${entry.count}×)`;
    const marker = document.createElement("li");
    marker.className = "recovery";
    marker.dataset.channel = channel;
    marker.textContent = `${new Date().toLocaleTimeString()} ${channel} rejoined: ${verdict}`;
    addToFeed(marker);
  });

  /** Offsets up to this were history when the page opened. */
  const historyTop = new Map<string, number>();
  /** Adds `e` to the feed; answers its data as JSON for callers that show it elsewhere too. */
  const show = (e: CourierEvent): string => {
    received++;
    $("stat-events").textContent = String(received);
    const li = document.createElement("li");
    li.dataset.event = e.event;
    li.dataset.channel = e.channel;
    li.dataset.offset = String(e.offset);
    li.dataset.source = e.offset <= (historyTop.get(e.channel) ?? 0) ? "history" : "live";
    if (e.critical) li.className = "critical";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = e.event;
    const json = JSON.stringify(e.data);
    li.append(`${new Date(e.ts).toLocaleTimeString()} ${e.channel} #${e.offset} `, name, ` ${json.slice(0, 160)}`);
    addToFeed(li);
    return json;
  };

  // The user's tier signals: the SDK names the channels this tier may join.
  $("signal-tier").textContent = tier;
  const signalItems = new Map<string, HTMLElement>();
  for (const channel of signalsFor(tier)) {
    const li = document.createElement("li");
    li.dataset.channel = channel;
    const last = document.createElement("span");
    last.className = "last";
    last.textContent = "no signal yet";
    li.append(channel, last);
    $("signal-channels").append(li);
    signalItems.set(channel, last);
  }
  const showSignal = (e: CourierEvent) => {
    const json = show(e);
    signalItems.get(e.channel)!.textContent = `${e.event} ${json.slice(0, 80)}`;
  };

  const join = async (channel: string, handler: (e: CourierEvent) => void) => {
    const recent = await recentStart(channel, token);
    if (recent) historyTop.set(channel, recent.top);
    client.subscribe(channel, handler, recent ? { since: recent.since } : {});
  };

  // The newest answer stream: its whole text on every change, Stop while it grows.
  let shown: AgentStream | null = null;
  const answer = $("answer");
  const stop = $<HTMLButtonElement>("stop-answer");
  client.on("stream", (s) => {
    if (shown !== null && s.stream !== shown.stream && s.offset < shown.offset) return;
    shown = s;
    answer.dataset.stream = s.stream;
    answer.dataset.status = s.status;
    $("answer-text").textContent = s.text;
    $("answer-status").textContent = s.status === "streaming" ? "(streaming…)" : `(${s.status})`;
    stop.hidden = s.status !== "streaming";
  });
  stop.addEventListener("click", () => {
    if (shown === null) return;
    stop.disabled = true;
    client
      .cancel(shown.channel, shown.stream)
      .catch(fail)
      .finally(() => (stop.disabled = false));
  });

  const fail = (error: unknown) => {
    const el = $("action-error");
    el.hidden = false;
    el.textContent = error instanceof Error ? error.message : String(error);
  };
  $("run-agent").addEventListener("click", () => {
    $("action-error").hidden = true;
    client.rpc("agent.run", { prompt: "Summarise today's signals" }).catch(fail);
  });
  let unsubscribeJob: (() => void) | null = null;
  $("start-job").addEventListener("click", async () => {
    $("action-error").hidden = true;
    try {
      // The job starts at once: subscribe from its beginning so no early stage is missed.
      const { job, epoch } = (await client.rpc("jobs.simulate", {})) as { job: string; epoch: string };
      $("job-id").textContent = job;
      const progress = $<HTMLProgressElement>("job-progress");
      progress.value = 0;
      unsubscribeJob?.();
      unsubscribeJob = client.subscribe(`job:${job}`, onJobEvent, { since: { offset: 0, epoch } });
      function onJobEvent(e: CourierEvent) {
        show(e);
        const data = (e.data ?? {}) as { percent?: number; stage?: string };
        if (typeof data.percent === "number") progress.value = data.percent;
        if (data.stage) $("job-stage").textContent = data.stage;
        if (e.event === "job_completed") {
          progress.value = 100;
          $("job-stage").textContent = "completed";
        }
      }
    } catch (error) {
      fail(error);
    }
  });

  setInterval(() => {
    if (client.status !== "live") return;
    client.ping({ timeoutMs: 3000 }).then((ms) => ($("stat-rtt").textContent = `${ms.toFixed(1)} ms`), () => {});
  }, 5000);
  // Channels join with their recent history; connecting waits for the positions so nothing is missed.
  void Promise.all([join(`user:${user}`, show), ...signalsFor(tier).map((channel) => join(channel, showSignal))]).finally(() => client.connect());
}

const token = takeToken();
const claims = token ? tokenClaims(token) : null;
if (token && claims) start(token, claims.user, claims.tier);
else showNoToken();
