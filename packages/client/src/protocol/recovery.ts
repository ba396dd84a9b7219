/**
 * The PROTOCOL.md §5 recovery verdict, in one place: the hub (a `subscribe` with `since`), the
 * history route (`/v1/history?since=&epoch=`) and the SDK (a poll that answers without a reason)
 * all ask this function, so the rule cannot drift between them.
 */
import { NotRecoveredReason } from "./codes.ts";

/** Where a reader says it is: the last offset it holds and, when known, that offset's epoch. */
export interface ReaderPosition {
  offset: number;
  /** Absent or null: the reader does not name an epoch (an HTTP poll without `epoch=`). */
  epoch?: string | null;
}

/** What the channel holds now. */
export interface ChannelPosition {
  epoch: string;
  /** The channel's top offset (0 when empty). */
  offset: number;
  /** Highest offset lost to trimming (0 if none): a reader after an offset below it missed events. */
  trimmedThrough: number;
}

export type RecoveryVerdict =
  | { recovered: true; replay: true }
  | { recovered: false; reason: NotRecoveredReason; /** Whether retained events follow. */ replay: boolean };

/**
 * Decides whether a reader at `since` resumes gap-free on `channel`:
 * another epoch → `epoch_changed`, nothing replayed; an offset past the top → `offset_ahead`,
 * nothing replayed; an offset before what is retained → `history_trimmed`, the retained events
 * replayed; otherwise recovered, with everything after `since.offset` replayed.
 *
 * @example
 * recoveryVerdict({ offset: 3, epoch: "e1" }, { epoch: "e1", offset: 9, trimmedThrough: 5 });
 * // { recovered: false, reason: "history_trimmed", replay: true }
 */
export function recoveryVerdict(since: ReaderPosition, channel: ChannelPosition): RecoveryVerdict {
  if (since.epoch != null && since.epoch !== channel.epoch) return { recovered: false, reason: NotRecoveredReason.EpochChanged, replay: false };
  if (since.offset > channel.offset) return { recovered: false, reason: NotRecoveredReason.OffsetAhead, replay: false };
  if (since.offset < channel.trimmedThrough) return { recovered: false, reason: NotRecoveredReason.HistoryTrimmed, replay: true };
  return { recovered: true, replay: true };
}
