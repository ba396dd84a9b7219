/**
 * The one publisher mechanism every target gets: HTTP POST from the load process, single or batch.
 * Each item's `data` carries `seq` and `sentAt` (this process's clock) so receivers in the same
 * process measure publish-call → receive latency without any clock offset.
 */
import { COURIER_TEST_API_KEY, publishPath, type TargetInfo } from "./target.ts";
import { nowMs } from "./proc.ts";

export interface PublishItem {
  channel: string;
  event: string;
  data: unknown;
  critical?: boolean;
}

export interface PublishAnswer {
  channel: string;
  offset: number;
  epoch?: string;
}

/** Padding that makes a Courier event frame on `public:bench` about 200 bytes. */
const PAD = "x".repeat(64);

/** The bench payload: sequence number, send time, and padding to ~200 B frames. */
export function payload(seq: number): { seq: number; sentAt: number; pad: string } {
  return { seq, sentAt: nowMs(), pad: PAD };
}

export class Publisher {
  readonly #single: string;
  readonly #batch: string;
  readonly #headers: Record<string, string>;

  constructor(target: TargetInfo) {
    const base = target.publishBase ?? target.base;
    this.#single = base + publishPath(target.kind, false);
    this.#batch = base + publishPath(target.kind, true);
    this.#headers = { "content-type": "application/json" };
    if (target.kind === "courier") this.#headers.authorization = `Bearer ${process.env.COURIER_API_KEY ?? COURIER_TEST_API_KEY}`;
  }

  async publish(item: PublishItem): Promise<PublishAnswer> {
    return (await this.#post(this.#single, item)) as PublishAnswer;
  }

  async batch(items: PublishItem[]): Promise<PublishAnswer[]> {
    return ((await this.#post(this.#batch, { items })) as { results: PublishAnswer[] }).results;
  }

  async #post(url: string, body: unknown): Promise<unknown> {
    const response = await fetch(url, { method: "POST", headers: this.#headers, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
    const text = await response.text();
    if (!response.ok) throw new Error(`POST ${url} → ${response.status} ${text.slice(0, 200)}`);
    return JSON.parse(text);
  }
}
