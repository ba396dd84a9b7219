/**
 * The dataset fence of the Redis engine: how a node tells that Redis lost writes it acknowledged
 * (a restart from an older snapshot, AOF `everysec` after a power loss, a failover to a lagging
 * replica), so that no offset is ever handed out twice under one epoch.
 *
 * Every publish raises a watermark stored in Redis (`<prefix>fence`, field `w`); the node keeps the
 * highest one it has seen in any script reply or pub/sub message, and every channel script takes
 * it. Redis holding less proves a loss: the script rotates the dataset generation (`g`), and each
 * channel takes a new epoch the next time a script touches it (see `redis-scripts.ts`). Because the
 * check runs inside each channel script, it is atomic with the write it guards, whatever Bun's
 * client replays after a reconnect.
 *
 * The node's knowledge lives in memory only: a node started after the loss cannot detect it (the
 * residual window, README "Failure modes").
 */
import type { LogFn } from "./redis-client.ts";
import { FENCE, type Script } from "./redis-scripts.ts";

export interface DatasetFenceOptions {
  /** The fence key (`redisKeys(prefix).fence`). */
  key: string;
  /** Runs a script under the engine's command timeout. */
  script: (s: Script, keys: string[], args: string[], what: string) => Promise<unknown>;
  /** A fresh, never reused token for a new generation. */
  candidate: () => string;
  log: LogFn;
}

/**
 * @example
 * const fence = createDatasetFence({ key: keys.fence, script, candidate: () => newEpoch(), log });
 * args.push(String(fence.known)); // into a channel script
 * fence.observe(Number(reply.watermark));
 * await fence.check(); // on every (re)connect
 */
export function createDatasetFence(o: DatasetFenceOptions) {
  let known = 0;
  const observe = (watermark: number) => {
    if (watermark > known) known = watermark;
  };
  return {
    /** The highest watermark this node has seen: what every channel script is given. */
    get known() {
      return known;
    },
    observe,
    /**
     * Checks Redis against the highest watermark this node saw (or `seen`, if higher); Redis holding
     * less gets a new generation. `lost`: the caller already has proof of a loss (a watermark that
     * came round again), so the generation rotates whatever the stored watermark now is.
     */
    async check(seen = 0, lost = false): Promise<void> {
      const floor = Math.max(known, seen);
      const reply = (await o.script(FENCE, [o.key], [String(floor), o.candidate(), lost ? "1" : "0"], "fence")) as [string, string, number];
      if (Number(reply[2]) === 1) o.log("error", "redis lost acknowledged writes: every channel moves to a new epoch", { watermark: floor });
      observe(Number(reply[1]));
    },
  };
}

export type DatasetFence = ReturnType<typeof createDatasetFence>;
