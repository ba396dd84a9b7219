/**
 * The embedded store against a model, on random runs (seeded): publishes (critical, coalesced),
 * clock steps both ways, trim passes, kill -9 copies of the files and clean restarts. After each
 * pass or restart: no committed offset handed out again, no event gone before a rule allowed it,
 * history frames byte for byte the live ones; at the end, a pass past every ts empties history.
 * FUZZ_N / FUZZ_SEED run more seeds.
 */
import { expect, test } from "bun:test";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEmbeddedEngine, type EmbeddedEngine } from "../src/engine/embedded-engine.ts";
import { eventFrame } from "../src/protocol/serializer.ts";

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const T0 = 1_800_000_000_000;

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface M { offset: number; critical: boolean; coalesce: string | null; ts: number; frame: string; removable: boolean }

async function run(seed: number) {
  const r = rng(seed);
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)]!;
  const historySize = pick([1, 2, 3, 5, 1000]);
  const clock = { now: T0 };
  let maxClock = T0;
  const dirs: string[] = [];
  let dataDir = await mkdtemp(join(tmpdir(), "fuzz-"));
  dirs.push(dataDir);
  const opts = { historySize, historyTtlMs: HOUR, criticalRetentionMs: DAY, idempotencyTtlMs: 5 * MIN, now: () => clock.now, log: () => {} };
  const open = async (dir: string) => {
    const e = createEmbeddedEngine({ ...opts, dataDir: dir });
    await e.start(() => {});
    return e;
  };
  let engine: EmbeddedEngine = await open(dataDir);
  const channels = ["c:a", "c:b", "c:c"];
  const model = new Map<string, { top: number; epoch: string | null; events: M[] }>(channels.map((c) => [c, { top: 0, epoch: null, events: [] }]));
  const log: string[] = [];
  const check = async (what: string) => {
    for (const ch of channels) {
      const m = model.get(ch)!;
      const page = await engine.history(ch, 0, 10_000);
      if (page.offset < m.top) throw new Error(`${what}: ${ch} offset ${page.offset} < committed ${m.top}\n${log.join("\n")}`);
      const stored = new Map(page.events.map((e) => [e.offset, e]));
      for (const e of m.events) {
        const s = stored.get(e.offset);
        if (s === undefined && !e.removable) throw new Error(`${what}: ${ch}@${e.offset} removed early ${JSON.stringify(e)} now=${clock.now - T0}\n${log.join("\n")}`);
        if (s !== undefined && s.frame !== e.frame) throw new Error(`${what}: frame differs ${s.frame} vs ${e.frame}`);
      }
      for (const s of page.events) if (!m.events.some((e) => e.offset === s.offset)) throw new Error(`${what}: unknown ${ch}@${s.offset}`);
      m.events = m.events.filter((e) => stored.has(e.offset));
    }
  };
  for (let step = 0; step < 120; step++) {
    const op = r();
    if (op < 0.45) {
      const n = 1 + Math.floor(r() * 4);
      const items = Array.from({ length: n }, () => ({
        channel: pick(channels), event: "e", dataJson: pick(["null", "1", '{"a":"\\u0000"}', '"x"']), critical: r() < 0.4,
        coalesce: r() < 0.4 ? pick(["k1", "k2"]) : undefined,
      }));
      log.push(`publish ${JSON.stringify(items.map((i) => [i.channel, i.critical, i.coalesce ?? null]))} at ${clock.now - T0}`);
      const outs = await Promise.all(items.map((i) => engine.publish([i])));
      outs.forEach(([o], k) => {
        const it = items[k]!;
        const m = model.get(o!.channel)!;
        if (o!.offset <= m.top && m.epoch === o!.epoch) throw new Error(`offset reused ${o!.channel}@${o!.offset} top ${m.top}\n${log.join("\n")}`);
        if (m.epoch !== null && m.epoch !== o!.epoch) throw new Error("epoch changed");
        m.epoch = o!.epoch;
        m.top = Math.max(m.top, o!.offset);
        if (it.coalesce !== undefined) for (const e of m.events) if (e.coalesce === it.coalesce && e.offset < o!.offset) e.removable = true;
        m.events.push({ offset: o!.offset, critical: it.critical, coalesce: it.coalesce ?? null, ts: clock.now,
          frame: eventFrame({ channel: o!.channel, offset: o!.offset, event: "e", dataJson: it.dataJson, critical: it.critical, ts: clock.now }), removable: false });
      });
      for (const m of model.values()) { m.events.sort((a, b) => a.offset - b.offset); }
    } else if (op < 0.65) {
      const d = pick([0, MIN, 10 * MIN, 50 * MIN, 2 * HOUR, 20 * HOUR, 2 * DAY, -30 * MIN, -3 * HOUR, -2 * DAY, 23 * HOUR + 59 * MIN]);
      clock.now += d;
      maxClock = Math.max(maxClock, clock.now);
      log.push(`clock ${d / MIN}m -> ${(clock.now - T0) / MIN}`);
    } else if (op < 0.85) {
      // Allowed removals for this pass.
      for (const m of model.values()) for (const e of m.events) {
        if (e.critical ? e.ts < clock.now - DAY : e.ts < clock.now - HOUR || e.offset <= m.top - historySize) e.removable = true;
      }
      log.push(`trim at ${(clock.now - T0) / MIN}`);
      await engine.trim(clock.now);
      await check("after trim");
    } else if (op < 0.93) {
      // kill -9 between turns: the files as they are.
      const copy = await mkdtemp(join(tmpdir(), "fuzz-"));
      dirs.push(copy);
      for (const name of ["courier.db", "courier.db-wal"]) if (existsSync(join(dataDir, name))) await copyFile(join(dataDir, name), join(copy, name));
      log.push("crash");
      const old = engine;
      dataDir = copy;
      engine = await open(dataDir);
      await old.close();
      await check("after crash");
    } else {
      log.push("restart");
      await engine.close();
      engine = await open(dataDir);
      await check("after restart");
    }
  }
  // Kept forever? Far past every ts, monotonic: everything goes.
  const maxTs = maxClock;
  clock.now = maxTs + 3 * DAY;
  for (const m of model.values()) for (const e of m.events) e.removable = true;
  await engine.trim(clock.now);
  for (const ch of channels) {
    const page = await engine.history(ch, 0, 10_000);
    if (page.events.length > 0) throw new Error(`kept forever ${ch}: ${page.events.map((e) => e.offset)}\n${log.join("\n")}`);
  }
  await check("end");
  // And offsets go on after a crash.
  const copy = await mkdtemp(join(tmpdir(), "fuzz-"));
  dirs.push(copy);
  for (const name of ["courier.db", "courier.db-wal"]) if (existsSync(join(dataDir, name))) await copyFile(join(dataDir, name), join(copy, name));
  const old = engine;
  engine = await open(copy);
  await old.close();
  for (const ch of channels) {
    const m = model.get(ch)!;
    const [o] = await engine.publish([{ channel: ch, event: "e", dataJson: "null", critical: false }]);
    if (m.epoch !== null && o!.epoch === m.epoch && o!.offset <= m.top) throw new Error(`offset reused at end ${ch}@${o!.offset} top ${m.top}\n${log.join("\n")}`);
  }
  await engine.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}

test("random runs keep offsets, retention rules and frames across crashes and restarts", async () => {
  const n = Number(process.env.FUZZ_N ?? 20);
  const base = Number(process.env.FUZZ_SEED ?? 1);
  for (let s = base; s < base + n; s++) {
    try {
      await run(s);
    } catch (e) {
      throw new Error(`seed ${s}: ${(e as Error).message}`);
    }
  }
}, 600_000);
