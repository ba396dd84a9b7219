/**
 * The admin page's script: log in with the admin key, then every 2 s read the cluster's nodes,
 * connections by tier, readiness and breakers (`/ws/stats?scope=cluster`, `/ready`) and the
 * presence of the watched channels (`/v1/presence`); browse a channel's history
 * (`/admin/api/history`), publish (`/v1/publish`) and disconnect a user (`/v1/disconnect`).
 */
import type { EventFrame } from "../../packages/client/src/protocol/frames.ts";
import { AdminApiError, call, forgetKeys, savedKeys, saveKeys, type Keys } from "./admin-api.ts";

const REFRESH_MS = 2000;
const WATCH_KEY = "courier:admin-watch";
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

interface NodeStats {
  node?: string;
  engine?: string;
  status?: string;
  readiness?: string;
  connections?: number;
  users?: number;
  byTier?: Record<string, number>;
  breakers?: Record<string, { state: string; failures: number }>;
}
type StatsBody = NodeStats | { scope: "cluster"; nodes: { node: string; stats: NodeStats }[]; self: NodeStats };
interface Presence {
  channel: string;
  subscribers: number;
  users: { user: string; connections: number }[];
}

/** An element with text or children. */
function el(tag: string, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function showError(id: string, error: unknown): void {
  const p = $(id);
  p.hidden = error === null;
  p.textContent = error instanceof AdminApiError ? `${error.message} (${error.status} ${error.code})` : error === null ? "" : String(error);
}

/** Runs a form's action, showing its error beside it. */
function onSubmit(formId: string, errorId: string, action: () => Promise<void>): void {
  $<HTMLFormElement>(formId).addEventListener("submit", (e) => {
    e.preventDefault();
    action().then(() => showError(errorId, null), (error) => showError(errorId, error));
  });
}

function renderNodes(stats: StatsBody): void {
  const nodes = "scope" in stats ? stats.nodes.map((n) => ({ ...n.stats, node: n.node })) : [stats];
  $("node-rows").replaceChildren(
    ...nodes.map((n) =>
      el("tr", { "data-node": n.node ?? "" }, el("td", {}, n.node ?? "—"), el("td", {}, n.status ?? "—"), el("td", {}, n.readiness ?? "—"),
        el("td", { class: "connections" }, String(n.connections ?? 0)), el("td", {}, String(n.users ?? 0)), el("td", {}, n.engine ?? "—")),
    ),
  );
  const tiers: Record<string, number> = {};
  for (const n of nodes) for (const [tier, count] of Object.entries(n.byTier ?? {})) tiers[tier] = (tiers[tier] ?? 0) + count;
  $("tier-counts").replaceChildren(...Object.entries(tiers).flatMap(([tier, count]) => [el("dt", {}, tier), el("dd", { "data-tier": tier }, String(count))]));
  const breakers = nodes.flatMap((n) => Object.values(n.breakers ?? {}).map((b) => ({ node: n.node ?? "", ...b, name: (b as { name?: string }).name ?? "" })));
  $("breakers").replaceChildren(
    ...breakers.map((b) => el("li", { "data-breaker": b.name, "data-state": b.state }, `${b.name} `, el("span", { class: "pill" }, b.state), nodes.length > 1 ? ` on ${b.node}` : "")),
  );
}

function renderReadiness(ready: { status: string; checks?: Record<string, { ok: boolean; ms: number; error?: string }> }): void {
  const badge = $("readiness");
  badge.dataset.status = ready.status;
  badge.textContent = ready.status;
  $("checks").replaceChildren(
    ...Object.entries(ready.checks ?? {}).map(([name, c]) =>
      el("li", { "data-check": name, "data-ok": String(c.ok) }, `${c.ok ? "✓" : "✗"} ${name} (${c.ms} ms)${c.error ? `: ${c.error}` : ""}`),
    ),
  );
}

function watched(): string[] {
  return JSON.parse(sessionStorage.getItem(WATCH_KEY) ?? "[]") as string[];
}

function setWatched(channels: string[]): void {
  sessionStorage.setItem(WATCH_KEY, JSON.stringify(channels));
}

function renderPresence(keys: Keys, list: Presence[], refresh: () => void): void {
  $("channel-rows").replaceChildren(
    ...list.map((p) => {
      const users = el("td", { class: "users" });
      for (const u of p.users) {
        const kick = el("button", { type: "button", class: "small disconnect", "data-user": u.user }, "disconnect");
        kick.addEventListener("click", () => void disconnect(keys, u.user, "disconnected by an operator").then(refresh, (error) => showError("channels-error", error)));
        users.append(el("span", { "data-user": u.user }, `${u.user} (${u.connections})`), kick, " ");
      }
      const browse = el("button", { type: "button", class: "small" }, "history");
      browse.addEventListener("click", () => void loadHistory(keys, p.channel).catch((error) => showError("history-error", error)));
      const unwatch = el("button", { type: "button", class: "small" }, "unwatch");
      unwatch.addEventListener("click", () => {
        setWatched(watched().filter((c) => c !== p.channel));
        refresh();
      });
      return el("tr", { "data-channel": p.channel }, el("td", {}, p.channel), el("td", { class: "subscribers" }, String(p.subscribers)), users, el("td", {}, browse, unwatch));
    }),
  );
}

async function loadHistory(keys: Keys, channel: string): Promise<void> {
  $<HTMLInputElement>("history-channel").value = channel;
  const page = await call<{ channel: string; epoch: string; offset: number; events: EventFrame[] }>(keys, `/admin/api/history?channel=${encodeURIComponent(channel)}&limit=50`, { key: "admin" });
  $("history-head").textContent = `${page.channel}: top offset ${page.offset}, epoch ${page.epoch}, ${page.events.length} shown (newest first)`;
  $("history-rows").replaceChildren(
    ...page.events
      .slice()
      .reverse()
      .map((e) =>
        el("tr", { "data-offset": String(e.offset), "data-event": e.event }, el("td", {}, String(e.offset)), el("td", {}, new Date(e.ts).toLocaleTimeString()),
          el("td", {}, e.critical ? `${e.event} (critical)` : e.event), el("td", { class: "data" }, JSON.stringify(e.data).slice(0, 300))),
      ),
  );
}

async function disconnect(keys: Keys, user: string, reason: string): Promise<number> {
  const { closed } = await call<{ closed: number }>(keys, "/v1/disconnect", { key: "api", body: reason ? { user, reason } : { user } });
  $("disconnect-result").textContent = `${user}: ${closed} connection${closed === 1 ? "" : "s"} closed`;
  return closed;
}

function startConsole(keys: Keys): void {
  $("login").hidden = true;
  $("console").hidden = false;
  $("logout").hidden = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const refresh = async () => {
    clearTimeout(timer);
    try {
      const [stats, ready] = await Promise.all([call<StatsBody>(keys, "/ws/stats?scope=cluster", { key: "admin" }), call<Parameters<typeof renderReadiness>[0]>(keys, "/ready", { key: "none" })]);
      renderNodes(stats);
      renderReadiness(ready);
      $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
      const presence = await Promise.all(watched().map((channel) => call<Presence>(keys, `/v1/presence?channel=${encodeURIComponent(channel)}`, { key: "api" })));
      renderPresence(keys, presence, () => void refresh());
      showError("channels-error", null);
    } catch (error) {
      if (error instanceof AdminApiError && error.status === 401 && error.code !== "network") return logout("The key was refused: log in again.");
      showError("channels-error", error);
    } finally {
      timer = setTimeout(() => void refresh(), REFRESH_MS);
    }
  };

  const logout = (message = "") => {
    clearTimeout(timer);
    forgetKeys();
    if (message) sessionStorage.setItem("courier:admin-message", message);
    location.reload();
  };
  $("logout").addEventListener("click", () => logout());

  onSubmit("watch-form", "channels-error", async () => {
    const channel = $<HTMLInputElement>("watch-channel").value.trim();
    if (!watched().includes(channel)) setWatched([...watched(), channel]);
    await refresh();
  });
  onSubmit("history-form", "history-error", () => loadHistory(keys, $<HTMLInputElement>("history-channel").value.trim()));
  onSubmit("publish-form", "publish-error", async () => {
    let data: unknown;
    try {
      data = JSON.parse($<HTMLTextAreaElement>("publish-data").value || "null");
    } catch {
      throw new Error("Data must be JSON");
    }
    const channel = $<HTMLInputElement>("publish-channel").value.trim();
    const body = { channel, event: $<HTMLInputElement>("publish-event").value.trim(), data, critical: $<HTMLInputElement>("publish-critical").checked };
    const { offset } = await call<{ offset: number }>(keys, "/v1/publish", { key: "api", body });
    $("publish-result").textContent = `published to ${channel} at offset ${offset}`;
  });
  onSubmit("disconnect-form", "disconnect-error", async () => {
    await disconnect(keys, $<HTMLInputElement>("disconnect-user").value.trim(), $<HTMLInputElement>("disconnect-reason").value.trim());
    await refresh();
  });
  void refresh();
}

function startLogin(): void {
  const message = sessionStorage.getItem("courier:admin-message");
  if (message) {
    sessionStorage.removeItem("courier:admin-message");
    showError("login-error", message);
  }
  onSubmit("login-form", "login-error", async () => {
    const admin = $<HTMLInputElement>("admin-key").value.trim();
    const api = $<HTMLInputElement>("api-key").value.trim();
    // Checked before it is kept: a wrong key is answered here, not by a page that stays empty.
    await call(keys(admin, api), "/ws/stats", { key: "admin" }).catch((error) => {
      throw error instanceof AdminApiError && error.status === 401 ? new Error("That admin key was refused.") : error;
    });
    saveKeys(admin, api);
    startConsole(keys(admin, api));
  });
}

const keys = (admin: string, api: string): Keys => ({ admin, api: api || admin });
const saved = savedKeys();
if (saved) startConsole(saved);
else startLogin();
