/**
 * The in-memory priority buffer: the newest delivered events per channel, in front of the store.
 * It makes catch-up fast and closes the gap between a history read and joining the live topic.
 * Memory is bounded per channel (count) and globally (bytes). Under the global cap non-critical
 * events leave first; critical events leave memory only (they are already in the store: they spill,
 * they are never lost).
 */
import type { StoredEvent } from "../engine/types.ts";

export interface RecentBufferOptions {
  /** Events kept per channel. */
  perChannel: number;
  /** Bytes of frames kept across all channels. */
  capBytes: number;
}

export interface BufferStats {
  /** Critical events pushed out of memory by the cap, kept in the store. */
  criticalKept: number;
  /** Non-critical events pushed out by the cap. */
  nonCriticalDropped: number;
  /** Times the global cap was reached. */
  overflows: number;
  bytes: number;
  channels: number;
}

/** Fixed overhead per buffered event, on top of its frame text (UTF-16 in memory). */
const EVENT_OVERHEAD = 96;

const sizeOf = (e: StoredEvent) => EVENT_OVERHEAD + e.frame.length * 2;

export class RecentBuffer {
  readonly #perChannel: number;
  readonly #capBytes: number;
  readonly #rings = new Map<string, StoredEvent[]>();
  #bytes = 0;
  #criticalKept = 0;
  #nonCriticalDropped = 0;
  #overflows = 0;

  constructor(options: RecentBufferOptions) {
    if (options.perChannel < 1) throw new RangeError("perChannel must be at least 1");
    this.#perChannel = options.perChannel;
    this.#capBytes = options.capBytes;
  }

  /** Appends delivered events (offset order) to the channel's ring. */
  push(channel: string, events: readonly StoredEvent[]): void {
    let ring = this.#rings.get(channel);
    if (!ring) this.#rings.set(channel, (ring = []));
    for (const event of events) {
      ring.push(event);
      this.#bytes += sizeOf(event);
    }
    if (ring.length > this.#perChannel) {
      for (const old of ring.splice(0, ring.length - this.#perChannel)) this.#bytes -= sizeOf(old);
    }
    if (this.#bytes > this.#capBytes) this.#evict();
  }

  /**
   * Events with offset > `after`, or null when the ring cannot prove it holds all of them
   * (it starts later than `after + 1`). Coalesced events stay in the ring: live subscribers saw them.
   */
  after(channel: string, after: number): StoredEvent[] | null {
    const ring = this.#rings.get(channel);
    if (!ring || ring.length === 0) return [];
    if (ring[0]!.offset > after + 1) return null;
    // Rings are short and offsets ascending: a binary search would do, a scan from the end is enough.
    let i = ring.length;
    while (i > 0 && ring[i - 1]!.offset > after) i--;
    return ring.slice(i);
  }

  /** Offset of the newest buffered event of `channel`, or 0. */
  top(channel: string): number {
    const ring = this.#rings.get(channel);
    return ring && ring.length > 0 ? ring[ring.length - 1]!.offset : 0;
  }

  /** Forgets a channel nobody on this node listens to any more. */
  drop(channel: string): void {
    const ring = this.#rings.get(channel);
    if (!ring) return;
    for (const e of ring) this.#bytes -= sizeOf(e);
    this.#rings.delete(channel);
  }

  stats(): BufferStats {
    return {
      criticalKept: this.#criticalKept,
      nonCriticalDropped: this.#nonCriticalDropped,
      overflows: this.#overflows,
      bytes: this.#bytes,
      channels: this.#rings.size,
    };
  }

  #evict(): void {
    this.#overflows++;
    const target = this.#capBytes * 0.9;
    // First pass: only non-critical heads go; a critical head stops that channel's pass.
    for (const pass of ["nonCritical", "any"] as const) {
      for (const [channel, ring] of this.#rings) {
        while (ring.length > 0 && this.#bytes > target) {
          const head = ring[0]!;
          if (pass === "nonCritical" && head.critical) break;
          ring.shift();
          this.#bytes -= sizeOf(head);
          if (head.critical) this.#criticalKept++;
          else this.#nonCriticalDropped++;
        }
        if (ring.length === 0) this.#rings.delete(channel);
        if (this.#bytes <= target) return;
      }
    }
  }
}
