import { describe, expect, test } from "bun:test";
import { CriticalTracker } from "../../src/delivery/critical-tracker.ts";

describe("CriticalTracker", () => {
  const tracker = () => {
    const t = new CriticalTracker();
    for (const [offset, ts] of [[2, 100], [5, 200], [6, 300], [9, 400]] as const) t.add("c", offset, ts);
    return t;
  };

  test("oldestUnacked finds the first critical event in (after, upTo] and counts them", () => {
    const t = tracker();
    expect(t.oldestUnacked("c", 0, 10)).toEqual({ ts: 100, count: 4 });
    expect(t.oldestUnacked("c", 2, 10)).toEqual({ ts: 200, count: 3 });
    expect(t.oldestUnacked("c", 4, 6)).toEqual({ ts: 200, count: 2 });
    expect(t.oldestUnacked("c", 6, 8)).toBeNull();
    expect(t.oldestUnacked("c", 9, 20)).toBeNull();
    expect(t.oldestUnacked("other", 0, 10)).toBeNull();
  });

  test("acked confirms exactly the critical events in (from, to] with their times", () => {
    expect(tracker().acked("c", 2, 6, 1000)).toEqual({ confirmed: 2, totalMs: 1500, samplesMs: [800, 700] });
    expect(tracker().acked("c", 9, 12, 1000).confirmed).toBe(0);
  });

  test("prune and drop forget entries", () => {
    const t = tracker();
    t.prune(250);
    expect(t.oldestUnacked("c", 0, 10)).toEqual({ ts: 300, count: 2 });
    t.drop("c");
    expect(t.oldestUnacked("c", 0, 10)).toBeNull();
  });
});
