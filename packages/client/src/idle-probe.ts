/**
 * Browsers answer the server's WebSocket pings without showing them, so a half-open connection
 * (a sleeping laptop, a dead NAT entry) can look open for minutes. After a heartbeat with no
 * frame at all, the probe asks for a `ping` frame; the caller treats a ping without answer
 * within another heartbeat as stale.
 */
import type { Timers } from "./types.ts";

/**
 * Watches one connection's traffic.
 *
 * @example
 * const probe = new IdleProbe(globalTimers);
 * probe.start(25_000, () => ping().catch(() => reconnect("stale")));
 * socket.onmessage = () => probe.saw();
 */
export class IdleProbe {
  #timers: Timers;
  #timer: unknown = undefined;
  #seen = 0;
  #seenAtTick = 0;

  /** @example new IdleProbe(globalTimers); */
  constructor(timers: Timers) {
    this.#timers = timers;
  }

  /** A frame arrived. @example probe.saw(); */
  saw(): void {
    this.#seen++;
  }

  /**
   * Calls `ping` after each heartbeat that saw no frame.
   *
   * @example
   * probe.start(welcome.heartbeat * 1000, sendPing);
   */
  start(heartbeatMs: number, ping: () => void): void {
    this.stop();
    this.#seenAtTick = this.#seen;
    const tick = () => {
      this.#timer = this.#timers.setTimeout(tick, heartbeatMs);
      if (this.#seen !== this.#seenAtTick) {
        this.#seenAtTick = this.#seen;
        return;
      }
      ping();
    };
    this.#timer = this.#timers.setTimeout(tick, heartbeatMs);
  }

  /** @example probe.stop(); */
  stop(): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
