/**
 * The status page's script: a CourierClient drives the Live/Offline/Connecting badge, the live
 * event feed, the agent's growing answer (PROTOCOL §8, with a Stop button) and the connection
 * stats; buttons run the demo agent and a simulated job over rpc.
 *
 * Positions are kept in memory only: a reload subscribes without `since`, so the server sends the
 * text so far of an answer in progress as one snapshot (§8) and the page shows it at once.
 */
import { CourierClient, memoryOffsetStore, type AgentStream, type CourierEvent } from "../../packages/client/src/index.ts";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const LABELS = { connecting: "Connecting", live: "Live", offline: "Offline" } as const;
const FEED_MAX = 200;

function tokenUser(token: string): string | null {
  try {
    const payload = JSON.parse(atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")));
    return typeof payload.sub === "string" ? payload.sub : null;
  } catch {
    return null;
  }
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
    location.search = `?token=${encodeURIComponent(token)}`;
  });
}

function start(token: string, user: string): void {
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
  client.on("recovery", ({ channel, recovered, reason }) => {
    $("stat-recovery").textContent = recovered ? `${channel}: recovered` : `${channel}: not recovered (${reason ?? "unknown"})`;
  });

  const feed = $("feed");
  const show = (e: CourierEvent) => {
    received++;
    $("stat-events").textContent = String(received);
    const li = document.createElement("li");
    li.dataset.event = e.event;
    li.dataset.channel = e.channel;
    li.dataset.offset = String(e.offset);
    if (e.critical) li.className = "critical";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = e.event;
    li.append(`${new Date(e.ts).toLocaleTimeString()} ${e.channel} #${e.offset} `, name, ` ${JSON.stringify(e.data).slice(0, 160)}`);
    feed.prepend(li);
    while (feed.children.length > FEED_MAX) feed.lastElementChild!.remove();
  };
  client.subscribe(`user:${user}`, show);

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
  client.connect();
}

const token = new URLSearchParams(location.search).get("token");
const user = token ? tokenUser(token) : null;
if (token && user) start(token, user);
else showNoToken();
