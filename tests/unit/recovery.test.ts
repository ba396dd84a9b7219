import { describe, expect, test } from "bun:test";
import { recoveryVerdict } from "../../src/protocol/recovery.ts";

describe("recoveryVerdict", () => {
  const channel = { epoch: "e1", offset: 9, trimmedThrough: 5 };

  test("another epoch is epoch_changed and replays nothing, whatever the offset", () => {
    expect(recoveryVerdict({ offset: 7, epoch: "e0" }, channel)).toEqual({ recovered: false, reason: "epoch_changed", replay: false });
  });
  test("an offset past the top is offset_ahead and replays nothing", () => {
    expect(recoveryVerdict({ offset: 10, epoch: "e1" }, channel)).toEqual({ recovered: false, reason: "offset_ahead", replay: false });
  });
  test("an offset before what is retained is history_trimmed and replays what is left", () => {
    expect(recoveryVerdict({ offset: 4, epoch: "e1" }, channel)).toEqual({ recovered: false, reason: "history_trimmed", replay: true });
  });
  test("an offset at the trim line or later recovers", () => {
    expect(recoveryVerdict({ offset: 5, epoch: "e1" }, channel)).toEqual({ recovered: true, replay: true });
    expect(recoveryVerdict({ offset: 9, epoch: "e1" }, channel)).toEqual({ recovered: true, replay: true });
  });
  test("a reader that names no epoch is judged by offsets alone", () => {
    expect(recoveryVerdict({ offset: 6 }, channel)).toEqual({ recovered: true, replay: true });
    expect(recoveryVerdict({ offset: 6, epoch: null }, channel)).toEqual({ recovered: true, replay: true });
  });
});
