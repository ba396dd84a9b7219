/**
 * The publish pipeline, named: the store's breaker → `Broker.publish` (offsets, storage, group
 * commit, then `deliver` → `Hub.deliver` → Bun's `server.publish`) → extensions' `published` →
 * metrics, once the turn's writes are out. The publish routes and the domain (jobs, signals,
 * agent) all go through here. Per publish the cost is constant: one breaker call, one counter add
 * per item, one notify; never anything per subscriber.
 */
import { StoreUnavailableError, type Broker, type PublishItem, type PublishOutcome } from "../engine/types.ts";
import { channelKind } from "../protocol/channel.ts";
import { eventFrameBytes } from "../protocol/serializer.ts";
import { BreakerOpenError, type CircuitBreaker } from "../resilience/index.ts";
import type { Metrics } from "../telemetry/index.ts";
import { AfterWrites } from "./after-writes.ts";
import type { ExtensionSet } from "./extension.ts";
import type { NodeStats } from "./node-stats.ts";

/** Options for {@linkcode Publisher}. */
export interface PublisherOptions {
  broker: Pick<Broker, "publish">;
  /** The store's breaker: an open one refuses at once instead of waiting on a store that is down. */
  breaker: CircuitBreaker;
  metrics: Pick<Metrics, "publishes">;
  stats: NodeStats;
  /** Sees every stored publish, whoever published it, before the publish resolves. */
  extensions: Pick<ExtensionSet, "published">;
  /** Records `metrics` once the turn's writes are out (after-writes.ts). @default its own AfterWrites */
  later?: Pick<AfterWrites, "run">;
  /**
   * Largest event frame a publish may produce (`limits.maxEventFrameBytes`): an event a default
   * client cannot receive would close every resume of its channel with 1009. @default Infinity
   */
  maxEventFrameBytes?: number;
}

/**
 * An item's event frame would exceed `limits.maxEventFrameBytes`; nothing was stored (the mapper
 * answers 413, naming the item of a batch).
 */
export class EventTooLargeError extends Error {
  override readonly name = "EventTooLargeError";
  constructor(
    /** The item's index in its publish call. */
    readonly index: number,
    readonly bytes: number,
    readonly limit: number,
    /** Whether the call held several items. */
    readonly batch: boolean,
  ) {
    super(`the event frame would be ${bytes} bytes, over the limit of ${limit} (limits.maxEventFrameBytes)`);
  }
}

/**
 * Stores events and tells who must know.
 *
 * @example
 * const publisher = new Publisher({ broker: engine, breaker, metrics, stats, extensions });
 * const [outcome] = await publisher.publish([{ channel: "user:a", event: "hi", dataJson: "{}", critical: false }]);
 */
export class Publisher {
  readonly #options: PublisherOptions;
  readonly #later: Pick<AfterWrites, "run">;

  constructor(options: PublisherOptions) {
    this.#options = options;
    this.#later = options.later ?? new AfterWrites();
  }

  /**
   * Publishes `items` all-or-nothing.
   *
   * @throws {EventTooLargeError} when an item's frame would be too large: nothing was stored.
   * @throws {StoreUnavailableError} when the store refused or its breaker is open: nothing was stored.
   */
  async publish(items: PublishItem[]): Promise<PublishOutcome[]> {
    const { broker, breaker, metrics, stats, extensions, maxEventFrameBytes = Infinity } = this.#options;
    for (const [index, item] of items.entries()) {
      const bytes = eventFrameBytes(item);
      if (bytes > maxEventFrameBytes) throw new EventTooLargeError(index, bytes, maxEventFrameBytes, items.length > 1);
    }
    let outcomes: PublishOutcome[];
    try {
      outcomes = await breaker.execute(() => broker.publish(items));
    } catch (error) {
      if (error instanceof BreakerOpenError) throw new StoreUnavailableError(error.message, { cause: error });
      throw error;
    }
    this.#later.run(() => {
      for (const item of items) metrics.publishes.add(1, { kind: channelKind(item.channel), class: item.critical ? "critical" : "normal" });
    });
    stats.publishes += items.length;
    extensions.published(items, outcomes);
    return outcomes;
  }
}
