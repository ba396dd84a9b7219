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
  /**
   * Non-critical events with `ts` below this go, in offset order: a channel's go up to its first
   * non-critical event with `ts` at or past it (see `prepareTrim` for a wall clock stepped back).
   */
  nonCriticalBefore: number;
  /** Critical events with `ts` below this go, in offset order as above. */
  criticalBefore: number;
}

export interface TrimResult {
  dropped: number;
  /** Per channel, the highest offset removed by this pass. */
  trimmed: Map<string, number>;
}

/**
 * A channel row's `top` is written when the row is made and by the trim pass, not by every commit
 * (that was one b-tree page more per commit, ~1 µs of ~28 per critical publish): the committed top
 * is the row's or the channel's highest stored offset, whichever is higher (sqlite-store.ts reads it
 * so). The newest event of a channel is only ever removed by the age rule, which writes the top
 * first; the engine hands each pass the tops committed since the last one, for the count rule; and
 * the first pass on an open file brings every row up to its highest stored offset, for the commits
 * made before it was opened (after a crash or a clean stop, the rows lag). That pass, not the open:
 * a store refusing writes (read-only, locked) must still start, serve reads and fail its readiness
 * probe, as it did when opening wrote nothing.
 */
const REFRESH_TOPS = `UPDATE channels SET top = (SELECT MAX("offset") FROM events WHERE events.channel = channels.channel)
  WHERE top < COALESCE((SELECT MAX("offset") FROM events WHERE events.channel = channels.channel), 0)`;

/**
 * Prepares the pass's statements once; the returned function runs one pass.
 *
 * The age rule walks each channel by offset, through the primary key, from where the last pass
 * stopped: a class's events go up to the first one not past its age. `ts` is the publish time, so
 * it only grows with the offset, unless the wall clock steps back: then an event published after
 * the step waits for those published before it, i.e. it is kept longer than its `ts` says (by at
 * most the step), never removed earlier.
 *
 * A row's `top` may lag its channel's newest event (`REFRESH_TOPS`): the first pass brings every
 * row up to its newest event, each pass then writes the `tops` it is given, and the age rule, the
 * one rule that can remove a channel's newest event, writes the channel's top before it does.
 *
 * @example
 * const trim = prepareTrim(db);
 * const { dropped, trimmed } = trim({ historySize: 100, nonCriticalBefore: now - hourMs, criticalBefore: now - dayMs }, new Map([["user:a", 42]]));
 */
export function prepareTrim(db: Database): (rule: TrimRule, tops: ReadonlyMap<string, number>) => TrimResult {
  const saveTop = db.query<null, [string, number]>("UPDATE channels SET top = ?2 WHERE channel = ?1 AND top < ?2");
  const newestStored = db.query<{ max: number | null }, [string]>(`SELECT MAX("offset") AS max FROM events WHERE channel = ?1`);
  // `swept`: the count rule already ran through this offset. Each pass then reads only events
  // published since the last, not the critical events retained below (possibly most of history).
  const selectUnswept = db.query<{ channel: string; swept: number; below: number }, [number]>(
    "SELECT channel, swept, top - ?1 AS below FROM channels WHERE top - ?1 > swept",
  );
  // A class's events in (?2, ?3]: counted, then removed. Indexed by `critical`; the count rule
  // uses the non-critical pair, the age rule both.
  const countIn = ([0, 1] as const).map((critical) =>
    db.query<{ max: number | null; n: number }, [string, number, number]>(
      `SELECT MAX("offset") AS max, COUNT(*) AS n FROM events WHERE channel = ?1 AND "offset" > ?2 AND "offset" <= ?3 AND critical = ${critical}`,
    ),
  );
  const deleteIn = ([0, 1] as const).map((critical) =>
    db.query<null, [string, number, number]>(`DELETE FROM events WHERE channel = ?1 AND "offset" > ?2 AND "offset" <= ?3 AND critical = ${critical}`),
  );
  const countOld = countIn[0]!;
  const deleteOld = deleteIn[0]!;
  const markSwept = db.query<null, [string, number]>("UPDATE channels SET swept = ?2 WHERE channel = ?1");
  // Channels with a class whose first event after its mark is past its age.
  const selectAged = db.query<AgeRow, [number, number]>(
    `SELECT channel, top, swept, nc_aged, nc_ts, c_aged, c_ts FROM channels WHERE nc_ts < ?1 OR c_ts < ?2`,
  );
  const classRule = (critical: 0 | 1) => {
    const [aged, ts] = critical === 1 ? ["c_aged", "c_ts"] : ["nc_aged", "nc_ts"];
    // The first event of the class, after `?2`, not past its age: where this pass stops.
    const firstKept = db.query<{ offset: number; ts: number }, [string, number, number]>(
      `SELECT "offset", ts FROM events WHERE channel = ?1 AND "offset" > ?2 AND critical = ${critical} AND ts >= ?3 ORDER BY "offset" LIMIT 1`,
    );
    const count = countIn[critical]!;
    const remove = deleteIn[critical]!;
    const mark = db.query<null, [string, number, number | null]>(`UPDATE channels SET ${aged} = ?2, ${ts} = ?3 WHERE channel = ?1`);
    /** Removes the channel's events of the class past `before`, from `from`; returns the highest removed and how many. */
    return (row: AgeRow, from: number, before: number): { max: number | null; n: number } => {
      const kept = firstKept.get(row.channel, from, before);
      let through = kept === null ? row.top : kept.offset - 1;
      if (kept === null) {
        // Every event of the class after `from` goes, perhaps the channel's newest: its top is kept.
        through = Math.max(through, newestStored.get(row.channel)?.max ?? 0);
        saveTop.run(row.channel, through);
      }
      mark.run(row.channel, through, kept === null ? null : kept.ts);
      if (through <= from) return { max: null, n: 0 };
      const old = count.get(row.channel, from, through)!;
      if (old.n > 0) remove.run(row.channel, from, through);
      return old;
    };
  };
  const ageNormal = classRule(0);
  const ageCritical = classRule(1);
  const raiseTrimmed = db.query<null, [string, number]>(
    "UPDATE channels SET trimmed = MAX(trimmed, ?2) WHERE channel = ?1",
  );
  const deleteEmptyChannels = db.query<null, []>("DELETE FROM channels WHERE top = 0");
  /** Cleared once a pass that ran `REFRESH_TOPS` committed. */
  let lagging = true;

  const pass = db.transaction((rule: TrimRule, tops: ReadonlyMap<string, number>): TrimResult => {
    if (lagging) db.run(REFRESH_TOPS);
    for (const [channel, top] of tops) saveTop.run(channel, top);
    const trimmed = new Map<string, number>();
    let dropped = 0;
    const note = (channel: string, max: number | null, n: number) => {
      if (n === 0 || max === null) return;
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
    // Read after the count rule: `swept` is where it left the channel's non-critical events.
    for (const row of selectAged.all(rule.nonCriticalBefore, rule.criticalBefore)) {
      if (row.nc_ts !== null && row.nc_ts < rule.nonCriticalBefore) {
        const { max, n } = ageNormal(row, Math.max(row.nc_aged, row.swept), rule.nonCriticalBefore);
        note(row.channel, max, n);
      }
      if (row.c_ts !== null && row.c_ts < rule.criticalBefore) {
        const { max, n } = ageCritical(row, row.c_aged, rule.criticalBefore);
        note(row.channel, max, n);
      }
    }
    for (const [channel, max] of trimmed) raiseTrimmed.run(channel, max);
    deleteEmptyChannels.run();
    return { dropped, trimmed };
  });
  return (rule, tops) => {
    const result = pass(rule, tops);
    lagging = false;
    return result;
  };
}

interface AgeRow {
  channel: string;
  top: number;
  swept: number;
  nc_aged: number;
  nc_ts: number | null;
  c_aged: number;
  c_ts: number | null;
}
