/**
 * One trim pass of the embedded store, in one transaction: non-critical events past the per-channel
 * count, non-critical events past their age, critical events past retention, and channel rows
 * that never had an event (older builds stored one per channel read).
 */
import type { Database } from "bun:sqlite";

/** What one trim pass removes. Critical events are only ever removed by `criticalBefore`. */
export interface TrimRule {
  /** Non-critical events with `offset <= top - historySize` go. */
  historySize: number;
  /** Non-critical events with `ts` below this go. */
  nonCriticalBefore: number;
  /** Critical events with `ts` below this go. */
  criticalBefore: number;
}

export interface TrimResult {
  dropped: number;
  /** Per channel, the highest offset removed by this pass. */
  trimmed: Map<string, number>;
}

/**
 * Prepares the pass's statements once; the returned function runs one pass.
 *
 * @example
 * const trim = prepareTrim(db);
 * const { dropped, trimmed } = trim({ historySize: 100, nonCriticalBefore: now - hourMs, criticalBefore: now - dayMs });
 */
export function prepareTrim(db: Database): (rule: TrimRule) => TrimResult {
  // `swept`: the count rule already ran through this offset. Each pass then reads only events
  // published since the last, not the critical events retained below (possibly most of history).
  const selectUnswept = db.query<{ channel: string; swept: number; below: number }, [number]>(
    "SELECT channel, swept, top - ?1 AS below FROM channels WHERE top - ?1 > swept",
  );
  const countOld = db.query<{ max: number | null; n: number }, [string, number, number]>(
    `SELECT MAX("offset") AS max, COUNT(*) AS n FROM events
     WHERE channel = ?1 AND "offset" > ?2 AND "offset" <= ?3 AND critical = 0`,
  );
  const deleteOld = db.query<null, [string, number, number]>(
    `DELETE FROM events WHERE channel = ?1 AND "offset" > ?2 AND "offset" <= ?3 AND critical = 0`,
  );
  const markSwept = db.query<null, [string, number]>("UPDATE channels SET swept = ?2 WHERE channel = ?1");
  const countAged = db.query<{ channel: string; max: number; n: number }, [number, number]>(
    `SELECT channel, MAX("offset") AS max, COUNT(*) AS n FROM events WHERE critical = ?1 AND ts < ?2 GROUP BY channel`,
  );
  const deleteAged = db.query<null, [number, number]>("DELETE FROM events WHERE critical = ?1 AND ts < ?2");
  const raiseTrimmed = db.query<null, [string, number]>(
    "UPDATE channels SET trimmed = MAX(trimmed, ?2) WHERE channel = ?1",
  );
  const deleteEmptyChannels = db.query<null, []>("DELETE FROM channels WHERE top = 0");

  return db.transaction((rule: TrimRule): TrimResult => {
    const trimmed = new Map<string, number>();
    let dropped = 0;
    const note = (channel: string, max: number, n: number) => {
      dropped += n;
      if (max > (trimmed.get(channel) ?? 0)) trimmed.set(channel, max);
    };
    for (const { channel, swept, below } of selectUnswept.all(rule.historySize)) {
      markSwept.run(channel, below);
      const old = countOld.get(channel, swept, below);
      if (old === null || old.n === 0 || old.max === null) continue;
      deleteOld.run(channel, swept, below);
      note(channel, old.max, old.n);
    }
    for (const [critical, before] of [[0, rule.nonCriticalBefore], [1, rule.criticalBefore]] as const) {
      const aged = countAged.all(critical, before);
      if (aged.length === 0) continue;
      deleteAged.run(critical, before);
      for (const a of aged) note(a.channel, a.max, a.n);
    }
    for (const [channel, max] of trimmed) raiseTrimmed.run(channel, max);
    deleteEmptyChannels.run();
    return { dropped, trimmed };
  });
}
