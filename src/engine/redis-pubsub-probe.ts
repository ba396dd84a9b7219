/**
 * The cluster broker's readiness check: a message published now, through the command connection,
 * reaches this node's subscriber connection. A PING proves the subscriber's socket answers; it
 * does not prove that messages arrive (BUN-NOTES: after a reconnect Bun's subscriber reports
 * connected and receives nothing until it unsubscribes and subscribes again). The probe channel is
 * a plain pub/sub channel (`<prefix>probe:<node>`): nothing is stored, no stream, no key.
 */
import type { RedisClient } from "bun";
import { resubscribe } from "./redis-client.ts";
import { StoreUnavailableError } from "./types.ts";

/** Options for {@linkcode createPubSubProbe}. */
export interface PubSubProbeOptions {
  /** The engine's subscriber connection (the one that carries channel messages). */
  sub: Pick<RedisClient, "subscribe" | "unsubscribe">;
  /** Publishes `message` on `channel` through the command connection, bounded like every command. */
  publish: (channel: string, message: string) => Promise<unknown>;
  /** The probe's pub/sub channel, one per node so nodes never answer each other's probes. */
  channel: string;
}

/** What the engine keeps. */
export interface PubSubProbe {
  /** Unsubscribes and subscribes the probe channel again: call on every subscriber connect. */
  resubscribe(): void;
  /** Resolves once a fresh message came back through the subscriber; rejects when `signal` aborts first. */
  check(signal?: AbortSignal): Promise<void>;
}

/**
 * @example
 * const probe = createPubSubProbe({ sub, publish: (ch, m) => run(cmd.send("PUBLISH", [ch, m]), "probe"), channel: "courier:probe:node-1" });
 * keepConnected(sub, { ..., onConnect: () => { watcher.resubscribe(); probe.resubscribe(); } });
 * await probe.check(AbortSignal.timeout(2_000));
 */
export function createPubSubProbe(o: PubSubProbeOptions): PubSubProbe {
  /** Nonce → the check waiting for it. */
  const waiting = new Map<string, () => void>();
  let seq = 0;
  let subscribed: Promise<void> | null = null;

  const onMessage = (message: string) => waiting.get(message)?.();

  function subscribe(): Promise<void> {
    const attempt = resubscribe(o.sub, [o.channel], onMessage);
    subscribed = attempt;
    attempt.catch(() => {
      if (subscribed === attempt) subscribed = null;
    });
    return attempt;
  }

  return {
    resubscribe: () => void subscribe().catch(() => {}),

    async check(signal) {
      signal?.throwIfAborted();
      const nonce = `${++seq}:${crypto.randomUUID()}`;
      const arrived = Promise.withResolvers<void>();
      const abort = () => arrived.reject(new StoreUnavailableError("Redis pub/sub: the probe message did not come back in time"));
      waiting.set(nonce, arrived.resolve);
      signal?.addEventListener("abort", abort, { once: true });
      try {
        await Promise.race([(subscribed ?? subscribe()).then(() => o.publish(o.channel, nonce)), arrived.promise]);
        await arrived.promise;
      } finally {
        waiting.delete(nonce);
        signal?.removeEventListener("abort", abort);
      }
    },
  };
}
