/**
 * The chaos scenarios' bookkeeping: every publish that got a 2xx goes in the ledger, and an audit
 * compares it with what a subscriber received and what `/v1/history` holds, counting lost,
 * duplicated and out-of-order events. A scenario passes when all three are 0, or when the fault
 * is answered by the explicit signal the contract promises (a 503, exit 1, `epoch_changed`).
 */
import { signToken } from "../../src/auth/tokens.ts";
import { connectWelcomed, type TestClient } from "../helpers/client.ts";
import { spawnCourier } from "../helpers/process.ts";
import { API_KEY, JWT_SECRET } from "../helpers/server.ts";

export interface Acked {
  channel: string;
  offset: number;
  epoch: string;
}

export interface PublishAnswer {
  status: number;
  retryAfter: string | null;
  acked: Acked | null;
}

export interface Audit {
  acked: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
}

/** Every 2xx publish, in the order the answers arrived. */
export class Ledger {
  readonly #acked: Acked[] = [];
  readonly #baseUrl: string;

  /** `baseUrl`: where publishes go. */
  constructor(baseUrl: string) {
    this.#baseUrl = baseUrl;
  }

  get acked(): readonly Acked[] {
    return this.#acked;
  }

  /** One critical publish; a 2xx is recorded, anything else (or no answer) is returned as is. */
  async publish(channel: string, data: unknown = null): Promise<PublishAnswer> {
    let res: Response;
    try {
      res = await fetch(`${this.#baseUrl}/v1/publish`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ channel, event: "chaos", data, critical: true }),
      });
    } catch {
      return { status: 0, retryAfter: null, acked: null };
    }
    const body = (await res.json()) as Acked;
    if (res.status < 200 || res.status > 299) return { status: res.status, retryAfter: res.headers.get("retry-after"), acked: null };
    const acked = { channel: body.channel, offset: body.offset, epoch: body.epoch };
    this.#acked.push(acked);
    return { status: res.status, retryAfter: null, acked };
  }

  /** Offsets acked on `channel`, in offset order. */
  offsets(channel: string): number[] {
    return this.#acked.filter((a) => a.channel === channel).map((a) => a.offset).sort((a, b) => a - b);
  }

  /** Compares the acked offsets of `channel` with the offsets some reader saw, in the order seen. */
  audit(channel: string, seen: readonly number[]): Audit {
    const acked = this.offsets(channel);
    const counts = new Map<number, number>();
    let outOfOrder = 0;
    for (let i = 0; i < seen.length; i++) {
      counts.set(seen[i]!, (counts.get(seen[i]!) ?? 0) + 1);
      if (i > 0 && seen[i]! < seen[i - 1]!) outOfOrder++;
    }
    let duplicated = 0;
    for (const n of counts.values()) if (n > 1) duplicated += n - 1;
    const lost = acked.filter((o) => !counts.has(o)).length;
    return { acked: acked.length, lost, duplicated, outOfOrder };
  }
}

/** Prints one audit line, so every scenario's outcome is in the test log. */
export function printAudit(scenario: string, reader: string, audit: Audit, extra: Record<string, unknown> = {}): void {
  console.log(`[chaos] ${scenario} ${reader}: ${JSON.stringify({ ...audit, ...extra })}`);
}

/** A user's WebSocket subscribed to its own channel, recording each event's offset as it arrives. */
export interface Subscriber {
  client: TestClient;
  channel: string;
  epoch: string;
  offsets: number[];
}

export async function subscribe(wsUrl: string, user: string): Promise<Subscriber> {
  const token = await signToken(JWT_SECRET, { sub: user }, 600);
  const client = await connectWelcomed(`${wsUrl}?token=${token}`);
  const channel = `user:${user}`;
  const offsets: number[] = [];
  client.ws.addEventListener("message", (m) => {
    const f = JSON.parse(String(m.data));
    if (f.type === "event" && f.channel === channel) offsets.push(f.offset);
  });
  const answer = await client.request({ type: "subscribe", channel });
  if (answer.type !== "subscribed") throw new Error(`subscribe failed: ${JSON.stringify(answer)}`);
  return { client, channel, epoch: answer.epoch, offsets };
}

/** Waits until the subscriber has seen every event sent to it before the call (a ping round trip orders it after them). */
export async function settle(sub: Subscriber): Promise<void> {
  await sub.client.request({ type: "ping" });
}

/** The offsets `/v1/history` holds for a user's channel (all of them, paged), and its epoch. */
export async function historyOf(baseUrl: string, user: string): Promise<{ epoch: string; offsets: number[] }> {
  const token = await signToken(JWT_SECRET, { sub: user }, 600);
  const offsets: number[] = [];
  let since = 0;
  let epoch = "";
  for (;;) {
    const res = await fetch(`${baseUrl}/v1/history?channel=user:${user}&since=${since}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    if (res.status !== 200) throw new Error(`history answered ${res.status}: ${await res.text()}`);
    const page = (await res.json()) as { epoch: string; events: { offset: number }[] };
    epoch = page.epoch;
    if (page.events.length === 0) return { epoch, offsets };
    for (const e of page.events) offsets.push(e.offset);
    since = page.events.at(-1)!.offset;
  }
}

/**
 * Starts a node on `dataDir`, audits the subscriber's channel in its history against the ledger
 * (printed), then drains it: resolves with the audit, the history's epoch and the drain's exit code.
 */
export async function auditAfterRestart(o: {
  scenario: string;
  reader: string;
  dataDir: string;
  ledger: Ledger;
  sub: Subscriber;
}): Promise<{ audit: Audit; epoch: string; exitCode: number }> {
  const node = await spawnCourier({ COURIER_DATA_DIR: o.dataDir });
  try {
    const history = await historyOf(node.http, o.sub.channel.slice("user:".length));
    const audit = o.ledger.audit(o.sub.channel, history.offsets);
    printAudit(o.scenario, o.reader, audit);
    node.kill("SIGTERM");
    return { audit, epoch: history.epoch, exitCode: await node.exited };
  } finally {
    node.kill("SIGKILL"); // no-op once drained; stops it when an assertion above threw
  }
}
