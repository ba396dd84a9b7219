/**
 * The ledger of a chaos scenario: every 2xx publish (channel, epoch, offset, the event's unique
 * `data.id`), checked at the end against what subscribers received and what `/v1/history` holds.
 *
 * Counts, each of which must be 0 unless the contract's explicit signal covers it:
 * - `lost`: acknowledged, never received by a subscriber and not in history.
 * - `historyMissing`: acknowledged under the epoch history still has, yet not in it.
 * - `duplicated`: one event received twice under one epoch by one subscriber.
 * - `outOfOrder`: a subscriber's offsets not strictly increasing after a `subscribed` frame.
 * - `reusedOffsets`: one (channel, epoch, offset) naming two different events anywhere.
 * - `epochChanged` (the signal, not a failure): acknowledged under an epoch that was replaced
 *   (subscribers were told `epoch_changed`), and no longer in history.
 */
import type { Frame } from "../helpers/client.ts";

export interface Ack {
  channel: string;
  epoch: string;
  offset: number;
  id: string;
}

export interface LedgerCounts {
  acked: number;
  lost: number;
  historyMissing: number;
  duplicated: number;
  outOfOrder: number;
  reusedOffsets: number;
  epochChanged: number;
}

/** History of one channel as `/v1/history` answered it. */
export interface HistoryView {
  epoch: string;
  events: Frame[];
}

/**
 * @example
 * const ledger = createLedger("redis rollback");
 * ledger.ack("user:a", await res.json(), id);
 * const counts = ledger.check({ subscribers: [client.frames], history: new Map([["user:a", page]]) });
 */
export function createLedger(name: string) {
  const acks: Ack[] = [];
  return {
    acks,
    /** Records a 2xx publish answer (`{epoch, offset}`) of the event whose `data.id` is `id`. */
    ack(channel: string, outcome: { epoch: string; offset: number }, id: string) {
      acks.push({ channel, epoch: outcome.epoch, offset: outcome.offset, id });
    },
    /**
     * Compares the ledger with each subscriber's frames (all its connections' frames, in order)
     * and each channel's final history; prints the counts and returns them.
     */
    check(o: { subscribers: Frame[][]; history: Map<string, HistoryView> }): LedgerCounts {
      const counts: LedgerCounts = { acked: acks.length, lost: 0, historyMissing: 0, duplicated: 0, outOfOrder: 0, reusedOffsets: 0, epochChanged: 0 };
      const named = new Map<string, string>();
      const claim = (channel: string, epoch: string, offset: number, id: string) => {
        const key = `${channel}\n${epoch}\n${offset}`;
        const prior = named.get(key);
        if (prior === undefined) named.set(key, id);
        else if (prior !== id) counts.reusedOffsets++;
      };
      for (const a of acks) claim(a.channel, a.epoch, a.offset, a.id);
      const received = new Set<string>();
      for (const frames of o.subscribers) {
        const epochOf = new Map<string, string>();
        const last = new Map<string, number>();
        const seen = new Set<string>();
        for (const f of frames) {
          if (f.type === "subscribed") {
            epochOf.set(f.channel, f.epoch);
            // With `since` the replay may start below the top; without it, or after an epoch
            // change (which replays nothing), events follow the frame's offset.
            last.set(f.channel, f.recovered === undefined || f.reason === "epoch_changed" ? f.offset : 0);
          } else if (f.type === "event") {
            const epoch = epochOf.get(f.channel) ?? "";
            const id = String(f.data?.id);
            received.add(id);
            claim(f.channel, epoch, f.offset, id);
            if (seen.has(`${epoch}\n${id}`)) counts.duplicated++;
            seen.add(`${epoch}\n${id}`);
            if (f.offset <= (last.get(f.channel) ?? 0)) counts.outOfOrder++;
            last.set(f.channel, f.offset);
          }
        }
      }
      const stored = new Set<string>();
      for (const [channel, h] of o.history) {
        for (const e of h.events) {
          stored.add(String(e.data?.id));
          claim(channel, h.epoch, e.offset, String(e.data?.id));
        }
      }
      for (const a of acks) {
        if (stored.has(a.id)) continue;
        const h = o.history.get(a.channel);
        if (h && h.epoch === a.epoch) counts.historyMissing++;
        else if (received.has(a.id)) counts.epochChanged++;
        else counts.lost++;
      }
      console.log(
        `[chaos] ${name}: acked=${counts.acked} lost=${counts.lost} duplicated=${counts.duplicated} outOfOrder=${counts.outOfOrder} ` +
          `reusedOffsets=${counts.reusedOffsets} historyMissing=${counts.historyMissing} epochChanged(signalled)=${counts.epochChanged}`,
      );
      return counts;
    },
  };
}
