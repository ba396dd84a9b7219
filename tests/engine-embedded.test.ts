import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEmbeddedEngine, type EmbeddedEngine } from "../src/engine/embedded-engine.ts";
import { openSqliteStore } from "../src/engine/sqlite-store.ts";
import { StoreUnavailableError, type EngineOptions, type PublishItem, type StoredEvent } from "../src/engine/types.ts";
import { eventFrame } from "../src/protocol/serializer.ts";
import { engineContract } from "./contract/engine-contract.ts";

const ENGINE_MODULE = join(import.meta.dir, "../src/engine/embedded-engine.ts");

const OPTS: EngineOptions = {
  historySize: 1000,
  historyTtlMs: 60 * 60_000,
  criticalRetentionMs: 24 * 60 * 60_000,
  idempotencyTtlMs: 5 * 60_000,
  now: () => 1_800_000_000_000,
};

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "courier-engine-"));
  tempDirs.push(dir);
  return dir;
}

const quiet = () => {};

engineContract(
  "embedded",
  async (opts) => {
    const dataDir = await mkdtemp(join(tmpdir(), "courier-contract-"));
    return {
      engine: createEmbeddedEngine({ ...opts, dataDir, log: quiet }),
      cleanup: () => rm(dataDir, { recursive: true, force: true }),
      channelStored: async (channel) => {
        const db = new Database(join(dataDir, "courier.db"), { readonly: true });
        try {
          return db.query("SELECT 1 FROM channels WHERE channel = ?1").get(channel) !== null;
        } finally {
          db.close();
        }
      },
    };
  },
  { channelStored: true },
);

describe("embedded engine", () => {
  const engines: EmbeddedEngine[] = [];
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close();
    for (const d of tempDirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  async function started(dataDir: string, extra: Partial<Parameters<typeof createEmbeddedEngine>[0]> = {}) {
    const calls: { channel: string; events: StoredEvent[] }[] = [];
    const engine = createEmbeddedEngine({ ...OPTS, dataDir, log: quiet, ...extra });
    engines.push(engine);
    await engine.start((channel, events) => calls.push({ channel, events }));
    return { engine, calls };
  }

  const item = (channel: string, extra: Partial<PublishItem> = {}): PublishItem => ({
    channel,
    event: "step",
    dataJson: "null",
    critical: false,
    ...extra,
  });

  test("publish before start throws TypeError", () => {
    const engine = createEmbeddedEngine({ ...OPTS, dataDir: join(tmpdir(), "never-created"), log: quiet });
    expect(() => engine.publish([item("user:a")])).toThrow(TypeError);
  });

  test("publishes of one turn are stored in one transaction and delivered once per channel", async () => {
    const { engine, calls } = await started(await tempDir());
    const before = engine.stats.commits;
    const started_ = performance.now();
    const pending = Array.from({ length: 1000 }, (_, i) => engine.publish([item(i % 2 ? "job:odd" : "job:even")]));
    const outcomes = (await Promise.all(pending)).flat();
    const ms = performance.now() - started_;
    expect(engine.stats.commits - before).toBe(1);
    expect(engine.stats.events).toBe(1000);
    expect(calls.map((c) => [c.channel, c.events.length])).toEqual([["job:even", 500], ["job:odd", 500]]);
    expect(calls[0]!.events.map((e) => e.offset)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(outcomes.at(-1)).toMatchObject({ channel: "job:odd", offset: 500 });
    console.log(`group commit: 1000 publishes in one turn in ${ms.toFixed(1)} ms`);
  });

  test("a publish that comes alone, and the one right after it, are committed and delivered before publish returns; the later ones share the turn's commit", async () => {
    const clock = { now: OPTS.now() };
    const { engine, calls } = await started(await tempDir(), { now: () => clock.now });
    const delivered = () => calls.map((c) => c.events.map((e) => e.offset));
    clock.now += 10;
    const alone = engine.publish([item("job:a")]);
    expect({ commits: engine.stats.commits, delivered: delivered() }).toEqual({ commits: 1, delivered: [[1]] });
    expect(await alone).toMatchObject([{ offset: 1, duplicate: false }]);

    // A late publish of a paced stream and the next one, on time, right after it.
    clock.now += 10;
    await engine.publish([item("job:a")]);
    const next = engine.publish([item("job:a")]);
    expect({ commits: engine.stats.commits, delivered: delivered() }).toEqual({ commits: 3, delivered: [[1], [2], [3]] });
    expect(await next).toMatchObject([{ offset: 3, duplicate: false }]);

    clock.now += 10;
    const burst = [engine.publish([item("job:a")]), engine.publish([item("job:a")]), engine.publish([item("job:a")]), engine.publish([item("job:a")])];
    expect(engine.stats.commits).toBe(5);
    expect((await Promise.all(burst)).flat().map((o) => o.offset)).toEqual([4, 5, 6, 7]);
    expect({ commits: engine.stats.commits, delivered: delivered() }).toEqual({ commits: 6, delivered: [[1], [2], [3], [4], [5], [6, 7]] });
  });

  test("a publish made while a batch is delivered waits for the next commit, after the whole batch", async () => {
    const clock = { now: OPTS.now() };
    const delivered: string[] = [];
    const engine = createEmbeddedEngine({ ...OPTS, dataDir: await tempDir(), log: quiet, now: () => clock.now });
    engines.push(engine);
    let nested: Promise<unknown> | null = null;
    await engine.start((channel, events) => {
      delivered.push(...events.map((e) => `${channel}:${e.offset}`));
      if (nested === null) {
        // Long after the last publish: alone, but for the batch being delivered.
        clock.now += 10;
        nested = engine.publish([item("job:b")]);
      }
    });
    await Promise.all([engine.publish([item("job:a")]), engine.publish([item("job:b")])]);
    await nested;
    expect(delivered).toEqual(["job:a:1", "job:b:1", "job:b:2"]);
  });

  test("after a checkpoint that copied every frame back, the engine starts the WAL over itself, not in the next publish's commit", async () => {
    const dataDir = await tempDir();
    let report: ((result: [number, number, number]) => void) | undefined;
    // Advancing: the engine's write is the probe row's time, and SQLite writes no page for an unchanged row.
    let now = OPTS.now();
    const { engine } = await started(dataDir, {
      now: () => (now += 10),
      startCheckpointer: (options) => {
        report = options.onRun;
        return { stats: () => ({ runs: 0, last: null }), close: () => {} };
      },
    });
    const path = join(dataDir, "courier.db");
    // The worker's checkpoint, run by the test on a connection of its own.
    const other = new Database(path);
    const checkpoint = (): [number, number, number] => {
      const row = other.query<{ busy: number; log: number; checkpointed: number }, []>("PRAGMA wal_checkpoint(PASSIVE)").get()!;
      return [row.busy, row.log, row.checkpointed];
    };
    // A WAL that starts over gets new salts in its header (and SQLite fsyncs that header).
    const salts = async () => (await readFile(`${path}-wal`)).subarray(16, 24).toString("hex");
    try {
      await engine.publish([item("job:a")]);
      const first = await salts();
      const copied = checkpoint();
      expect(copied[2]).toBe(copied[1]);
      report!([1, copied[1], copied[2]]); // busy: the writer was checkpointing itself
      expect(await salts()).toBe(first);
      report!(copied);
      const restarted = await salts();
      expect(restarted).not.toBe(first);
      // The publish appends to the WAL started over for it.
      expect(await engine.publish([item("job:a")])).toMatchObject([{ offset: 2 }]);
      expect(await salts()).toBe(restarted);

      report!(checkpoint());
      const again = await salts();
      expect(again).not.toBe(restarted);
      // Nothing committed since the engine's own write: the next report writes nothing (else every
      // checkpoint of an idle store would be followed by a write, and that write by a checkpoint).
      report!(checkpoint());
      expect(await salts()).toBe(again);
      expect(engine.stats).toMatchObject({ commits: 2, failures: 0 });
    } finally {
      other.close();
    }
  });

  test("a store that refuses a write rejects the whole batch and rolls the offsets back", async () => {
    const dataDir = await tempDir();
    const { engine, calls } = await started(dataDir);
    const [first] = await engine.publish([item("job:a")]);
    await engine.publish([item("job:b")]);

    // Another connection holding the write lock makes the batch's transaction fail (SQLITE_BUSY).
    const locker = new Database(join(dataDir, "courier.db"));
    locker.run("BEGIN IMMEDIATE");
    const refused = Promise.all([engine.publish([item("job:a"), item("job:b")]), engine.publish([item("job:a")])]);
    await expect(refused).rejects.toBeInstanceOf(StoreUnavailableError);
    await refused.catch(() => {});
    expect(engine.stats.failures).toBe(1);
    expect(await engine.position("job:a")).toEqual({ epoch: first!.epoch, offset: 1 });
    locker.run("ROLLBACK");
    locker.close();

    const [next] = await engine.publish([item("job:a")]);
    expect(next).toEqual({ channel: "job:a", offset: 2, epoch: first!.epoch, duplicate: false });
    expect(calls.map((c) => [c.channel, c.events.map((e) => e.offset)])).toEqual([
      ["job:a", [1]],
      ["job:b", [1]],
      ["job:a", [2]],
    ]);
    expect((await engine.history("job:a", 0, 10)).events.map((e) => e.offset)).toEqual([1, 2]);
  });

  test("a deliver that throws does not fail the stored publish", async () => {
    const logged: string[] = [];
    const engine = createEmbeddedEngine({ ...OPTS, dataDir: await tempDir(), log: (_level, msg) => logged.push(msg) });
    engines.push(engine);
    await engine.start(() => {
      throw new Error("fan-out broke");
    });
    expect(await engine.publish([item("user:a")])).toMatchObject([{ offset: 1, duplicate: false }]);
    expect(logged).toEqual(["deliver threw"]);
  });

  test("history and position exclude events whose batch is not committed yet", async () => {
    const { engine } = await started(await tempDir());
    await engine.publish([item("user:a")]);
    const pending = engine.publish([item("user:a")]);
    expect(await engine.history("user:a", 0, 10)).toMatchObject({ offset: 1, events: [{ offset: 1 }] });
    await pending;
    expect(await engine.position("user:a")).toMatchObject({ offset: 2 });
  });

  test("close commits the pending batch, and a reopened store keeps epochs, tops, trims, keys and records", async () => {
    const dataDir = await tempDir();
    let now = OPTS.now();
    const clock = () => now;
    const first = createEmbeddedEngine({ ...OPTS, historySize: 2, now: clock, dataDir, log: quiet });
    await first.start(() => {});
    await first.publish([item("job:a"), item("job:a"), item("job:a", { idempotencyKey: "k1" })]);
    await first.putRecord("job:a", "alice", 60_000);
    await first.trim(now);
    const pending = first.publish([item("job:a")]);
    await first.close();
    const [last] = await pending;
    expect(last!.offset).toBe(4);

    now += 1000;
    const { engine } = await started(dataDir, { historySize: 2, now: clock });
    expect(await engine.history("job:a", 0, 10)).toMatchObject({
      epoch: last!.epoch,
      offset: 4,
      trimmedThrough: 1,
      events: [{ offset: 2 }, { offset: 3 }, { offset: 4 }],
    });
    expect(await engine.publish([item("job:a", { idempotencyKey: "k1" })])).toEqual([
      { channel: "job:a", offset: 3, epoch: last!.epoch, duplicate: true },
    ]);
    expect(await engine.getRecord("job:a")).toBe("alice");
  });

  test("a corrupt store file is moved aside and replaced; channels get new epochs", async () => {
    const dataDir = await tempDir();
    const { engine: first } = await started(dataDir);
    const [old] = await first.publish([item("user:a", { critical: true })]);
    await first.close();
    await writeFile(join(dataDir, "courier.db"), "not a database ".repeat(500));

    const logged: [string, string][] = [];
    const { engine } = await started(dataDir, { log: (level, msg) => logged.push([level, msg]) });
    expect(logged.map(([level]) => level)).toEqual(["error"]);
    expect((await readdir(dataDir)).filter((f) => f.startsWith("courier.db.corrupt-")).length).toBeGreaterThan(0);
    const pos = await engine.position("user:a");
    expect(pos.offset).toBe(0);
    expect(pos.epoch).not.toBe(old!.epoch);
    expect(await engine.check()).toBeUndefined();
  });

  test("a file that fails quick_check is moved aside too", async () => {
    const dataDir = await tempDir();
    const { engine: first } = await started(dataDir);
    await first.publish(Array.from({ length: 2000 }, () => item("user:a", { dataJson: JSON.stringify("x".repeat(100)) })));
    await first.close();
    const file = Bun.file(join(dataDir, "courier.db"));
    const bytes = new Uint8Array(await file.arrayBuffer());
    expect(bytes.length).toBeGreaterThan(10 * 4096);
    bytes.fill(0x5a, 5 * 4096, 6 * 4096);
    await Bun.write(file, bytes);

    const logged: string[] = [];
    const { engine } = await started(dataDir, { log: (level) => logged.push(level) });
    expect(logged).toEqual(["error"]);
    expect(await engine.position("user:a")).toMatchObject({ offset: 0 });
  });

  test("check rejects once the engine is closed", async () => {
    const { engine } = await started(await tempDir());
    await engine.close();
    await expect(engine.check()).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(engine.publish([item("user:a")])).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  test("every publish answered before kill -9 survives, and offsets continue after it", async () => {
    const dataDir = await tempDir();
    const script = join(dataDir, "child.ts");
    await writeFile(
      script,
      `import { createEmbeddedEngine } from ${JSON.stringify(ENGINE_MODULE)};
const engine = createEmbeddedEngine({
  historySize: 1000, historyTtlMs: 3_600_000, criticalRetentionMs: 86_400_000, idempotencyTtlMs: 300_000,
  now: Date.now, dataDir: ${JSON.stringify(join(dataDir, "store"))}, log: () => {},
});
await engine.start(() => {});
for (let n = 1; n <= 100_000; ) {
  const turn = [];
  for (let j = 0; j < 10; j++, n++) {
    turn.push(engine.publish([{ channel: "job:crash", event: "tool_executing", dataJson: String(n), critical: true, idempotencyKey: "k" + n }]));
  }
  for (const [o] of await Promise.all(turn)) process.stdout.write(o.offset + " " + o.epoch + "\\n");
}
`,
    );
    const child = Bun.spawn({ cmd: [process.execPath, script], stdout: "pipe", stderr: "inherit" });
    const printed: { offset: number; epoch: string }[] = [];
    try {
      const decoder = new TextDecoder();
      let rest = "";
      const reader = child.stdout.getReader();
      while (printed.length < 200) {
        const { value: chunk, done } = await reader.read();
        if (done) break;
        const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n");
        rest = lines.pop()!;
        for (const line of lines) {
          const [offset, epoch] = line.split(" ");
          printed.push({ offset: Number(offset), epoch: epoch! });
        }
      }
    } finally {
      child.kill("SIGKILL");
    }
    expect(await child.exited).not.toBe(0);
    expect(child.signalCode).toBe("SIGKILL");
    expect(printed.length).toBeGreaterThanOrEqual(200);

    const { engine } = await started(join(dataDir, "store"), { now: Date.now });
    const page = await engine.history("job:crash", 0, 1_000_000);
    const stored = page.events.map((e) => e.offset);
    expect(stored).toEqual(Array.from({ length: stored.length }, (_, i) => i + 1));
    expect(printed.map((p) => p.offset)).toEqual(stored.slice(0, printed.length));
    expect(new Set(printed.map((p) => p.epoch))).toEqual(new Set([page.epoch]));

    const [next] = await engine.publish([item("job:crash")]);
    expect(next).toEqual({ channel: "job:crash", offset: page.offset + 1, epoch: page.epoch, duplicate: false });
    const [again] = await engine.publish([item("job:crash", { idempotencyKey: "k1" })]);
    expect(again).toEqual({ channel: "job:crash", offset: 1, epoch: page.epoch, duplicate: true });
  }, 20_000);

  test("history gives the very frames delivered live, after a restart too (rows keep data, not frames)", async () => {
    const dataDir = await tempDir();
    const clock = { now: OPTS.now() };
    const { engine, calls } = await started(dataDir, { now: () => clock.now });
    await engine.publish([
      item("job:f", { dataJson: '{"text":"héllo \\"q\\" ✓","n":[1,2.5,null]}' }),
      item("job:f", { critical: true, event: "tool_executing", dataJson: "null" }),
      item("job:f", { coalesce: "p", dataJson: '"x"', idempotencyKey: "k" }),
    ]);
    clock.now += 7;
    await engine.publish([item("job:f", { dataJson: "{}" })]);
    const live = calls.flatMap((c) => c.events.map((e) => e.frame));
    expect(live).toHaveLength(4);
    expect((await engine.history("job:f", 0, 10)).events.map((e) => e.frame)).toEqual(live);
    await engine.close();
    const reopened = await started(dataDir, { now: () => clock.now });
    expect((await reopened.engine.history("job:f", 0, 10)).events.map((e) => e.frame)).toEqual(live);
    const db = new Database(join(dataDir, "courier.db"), { readonly: true });
    expect(db.query('SELECT legacy_frame, data FROM events ORDER BY "offset"').all()).toEqual([
      { legacy_frame: "", data: '{"text":"héllo \\"q\\" ✓","n":[1,2.5,null]}' },
      { legacy_frame: "", data: "null" },
      { legacy_frame: "", data: '"x"' },
      { legacy_frame: "", data: "{}" },
    ]);
    db.close();
  });

  describe("channel tops", () => {
    const T0 = OPTS.now();
    const HOUR = 60 * 60_000;

    /** The store's files as a kill -9 would leave them (the engine is idle between turns): the WAL as written. */
    async function crashCopy(dataDir: string): Promise<string> {
      const copy = await tempDir();
      for (const name of ["courier.db", "courier.db-wal"]) await copyFile(join(dataDir, name), join(copy, name));
      return copy;
    }
    const rowTop = (dataDir: string, channel: string) => {
      const db = new Database(join(dataDir, "courier.db"), { readonly: true });
      try {
        return db.query<{ top: number }, [string]>("SELECT top FROM channels WHERE channel = ?1").get(channel)?.top;
      } finally {
        db.close();
      }
    };

    test("a row's top is written when it is made and by trim; offsets go on after a crash either way", async () => {
      const dataDir = await tempDir();
      const { engine } = await started(dataDir, { historySize: 2 });
      for (let i = 0; i < 5; i++) await engine.publish([item("job:t")]);
      expect(rowTop(dataDir, "job:t")).toBe(1);
      const crashed = await crashCopy(dataDir);
      expect(await engine.trim(T0)).toEqual({ dropped: 3 });
      expect(rowTop(dataDir, "job:t")).toBe(5);

      // The copy's row says 1: the first pass brings the row up to the newest stored offset.
      const { engine: after } = await started(crashed, { historySize: 2 });
      expect(await after.trim(T0)).toEqual({ dropped: 3 });
      expect(rowTop(crashed, "job:t")).toBe(5);
      expect(await after.publish([item("job:t")])).toMatchObject([{ offset: 6 }]);
    });

    test("a channel whose every event aged away keeps its top, after a crash too", async () => {
      const dataDir = await tempDir();
      const clock = { now: T0 };
      const { engine } = await started(dataDir, { now: () => clock.now });
      await engine.publish([item("job:gone"), item("job:gone"), item("job:gone", { critical: true })]);
      await engine.publish([item("job:gone")]);
      await engine.trim(T0);
      clock.now = T0 + 25 * HOUR;
      await engine.publish([item("job:other")]);
      expect(await engine.trim(clock.now)).toEqual({ dropped: 4 });
      expect(await engine.history("job:gone", 0, 10)).toMatchObject({ offset: 4, events: [], trimmedThrough: 4 });
      const crashed = await crashCopy(dataDir);
      const { engine: after } = await started(crashed, { now: () => clock.now });
      expect(await after.publish([item("job:gone")])).toMatchObject([{ channel: "job:gone", offset: 5, duplicate: false }]);
    });
  });

  test("the age rule writes the top of a channel it empties, even when no pass was handed it", async () => {
    const dataDir = await tempDir();
    const store = openSqliteStore({ dataDir, fileName: "courier.db", now: Date.now, log: quiet });
    try {
      const row = (offset: number, ts: number) => ({
        ev: { channel: "job:s", offset, event: "e", critical: false, coalesce: null, ts, frame: "" },
        idem: null,
        dataJson: "null",
      });
      const top = (t: number) => new Map([["job:s", { epoch: "e", top: t, normalTs: 1000, criticalTs: null }]]);
      store.commit([row(1, 1000)], top(1));
      store.commit([row(2, 1000), row(3, 1000)], top(3));
      expect(store.channel("job:s")).toEqual({ epoch: "e", top: 3, trimmed: 0 });
      expect(store.trim({ historySize: 100, nonCriticalBefore: 2000, criticalBefore: 0 }, new Map())).toMatchObject({ dropped: 3 });
      expect(store.channel("job:s")).toEqual({ epoch: "e", top: 3, trimmed: 3 });
    } finally {
      store.close();
    }
  });

  describe("the age rule", () => {
    const T0 = OPTS.now();
    const MINUTE = 60_000;
    const HOUR = 60 * MINUTE;
    const DAY = 24 * HOUR;

    test("after the wall clock steps back, an event waits for those published before it: none goes before its age", async () => {
      const clock = { now: T0 + 10 * MINUTE };
      const { engine } = await started(await tempDir(), { now: () => clock.now });
      await engine.publish([item("job:a"), item("job:a", { critical: true })]);
      clock.now = T0;
      await engine.publish([item("job:a"), item("job:a", { critical: true })]);

      // Offset 3 is past its hour, offset 1 (published before it, stamped 10 minutes later) is not.
      expect(await engine.trim(T0 + HOUR + 1)).toEqual({ dropped: 0 });
      expect(await engine.trim(T0 + 10 * MINUTE + HOUR + 1)).toEqual({ dropped: 2 });
      expect((await engine.history("job:a", 0, 10)).events.map((e) => e.offset)).toEqual([2, 4]);
      expect(await engine.trim(T0 + DAY + 1)).toEqual({ dropped: 0 });
      expect(await engine.trim(T0 + 10 * MINUTE + DAY + 1)).toEqual({ dropped: 2 });
      const page = await engine.history("job:a", 0, 10);
      expect(page).toEqual({ epoch: page.epoch, offset: 4, events: [], trimmedThrough: 4 });
    });

    test("each pass starts where the last one stopped, and later events are trimmed by later passes", async () => {
      const clock = { now: T0 };
      const { engine } = await started(await tempDir(), { now: () => clock.now });
      for (let i = 0; i < 3; i++) {
        await engine.publish([item("job:a"), item("job:a", { critical: true })]);
        clock.now += 10 * MINUTE;
      }
      expect(await engine.trim(T0 + HOUR + 1)).toEqual({ dropped: 1 });
      expect(await engine.trim(T0 + HOUR + 1)).toEqual({ dropped: 0 });
      await engine.publish([item("job:a")]);
      expect(await engine.trim(T0 + 20 * MINUTE + HOUR + 1)).toEqual({ dropped: 2 });
      expect((await engine.history("job:a", 0, 10)).events.map((e) => e.offset)).toEqual([2, 4, 6, 7]);
      expect(await engine.trim(T0 + 30 * MINUTE + DAY)).toEqual({ dropped: 4 });
      expect((await engine.history("job:a", 0, 10)).events.map((e) => e.offset)).toEqual([]);
    });
  });

  describe("a store made by an older build", () => {
    const T0 = OPTS.now();
    const HOUR = 60 * 60_000;
    /** The schema before the age columns: the age rule read an index on (critical, ts). */
    const OLD_SCHEMA = `
      CREATE TABLE channels (channel TEXT PRIMARY KEY, epoch TEXT NOT NULL, top INTEGER NOT NULL, trimmed INTEGER NOT NULL, swept INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
      CREATE TABLE events (channel TEXT NOT NULL, "offset" INTEGER NOT NULL, event TEXT NOT NULL, critical INTEGER NOT NULL, coalesce TEXT, ts INTEGER NOT NULL, frame TEXT NOT NULL, idem TEXT, PRIMARY KEY (channel, "offset")) WITHOUT ROWID;
      CREATE INDEX events_idem ON events (idem) WHERE idem IS NOT NULL;
      CREATE INDEX events_coalesce ON events (channel, coalesce) WHERE coalesce IS NOT NULL;
      CREATE INDEX events_age ON events (critical, ts);
      CREATE TABLE records (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE probe (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL);
      INSERT INTO meta (key, value) VALUES ('store_id', 'old-store');`;

    /** Stores events as an older build did (`idem` on the last one): its channel row has no age columns to set. */
    function storeOld(db: Database, channel: string, events: { critical: boolean; ts: number }[], idem?: string) {
      events.forEach(({ critical, ts }, i) => {
        const offset = i + 1;
        const frame = eventFrame({ channel, offset, event: "step", dataJson: String(offset), critical, ts });
        db.query(`INSERT INTO events (channel, "offset", event, critical, coalesce, ts, frame, idem) VALUES (?1, ?2, 'step', ?3, NULL, ?4, ?5, ?6)`).run(
          channel, offset, critical ? 1 : 0, ts, frame, i === events.length - 1 ? (idem ?? null) : null,
        );
      });
      db.query("INSERT INTO channels (channel, epoch, top, trimmed) VALUES (?1, 'aaaaaaaaaaaa', ?2, 0)").run(channel, events.length);
    }

    function schemaOf(dataDir: string) {
      const db = new Database(join(dataDir, "courier.db"), { readonly: true });
      try {
        return {
          indexes: db.query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' ORDER BY name").all().map((r) => r.name),
          ageColumns: db.query<{ name: string }, []>("PRAGMA table_info(channels)").all().map((c) => c.name).filter((n) => /_(aged|ts)$/.test(n)),
        };
      } finally {
        db.close();
      }
    }

    test("keeps its history, offsets and keys, drops the (critical, ts) index, and is trimmed by age as before", async () => {
      const dataDir = await tempDir();
      const old = new Database(join(dataDir, "courier.db"), { create: true });
      old.run("PRAGMA journal_mode = WAL");
      old.run(OLD_SCHEMA);
      storeOld(old, "job:old", [{ critical: false, ts: T0 - 2 * HOUR }, { critical: true, ts: T0 - 2 * HOUR }, { critical: false, ts: T0 }, { critical: true, ts: T0 }], "k-old");
      storeOld(old, "job:quiet", [{ critical: false, ts: T0 - 2 * HOUR }]);
      old.close();

      const { engine } = await started(dataDir);
      expect(schemaOf(dataDir)).toEqual({ indexes: ["events_coalesce", "events_idem"], ageColumns: ["nc_aged", "nc_ts", "c_aged", "c_ts"] });
      const page = await engine.history("job:old", 0, 10);
      expect(page).toMatchObject({ epoch: "aaaaaaaaaaaa", offset: 4, trimmedThrough: 0 });
      const stored: [number, boolean, number][] = [[1, false, T0 - 2 * HOUR], [2, true, T0 - 2 * HOUR], [3, false, T0], [4, true, T0]];
      expect(page.events.map((e) => [e.offset, e.critical, e.ts, e.frame])).toEqual(
        stored.map(([offset, critical, ts]) => [offset, critical, ts, eventFrame({ channel: "job:old", offset, event: "step", dataJson: String(offset), critical, ts })]),
      );

      expect(await engine.trim(T0)).toEqual({ dropped: 2 });
      expect((await engine.history("job:old", 0, 10)).events.map((e) => e.offset)).toEqual([2, 3, 4]);
      expect(await engine.history("job:quiet", 0, 10)).toMatchObject({ offset: 1, events: [], trimmedThrough: 1 });
      expect(await engine.publish([item("job:old"), item("job:quiet")])).toEqual([
        { channel: "job:old", offset: 5, epoch: "aaaaaaaaaaaa", duplicate: false },
        { channel: "job:quiet", offset: 2, epoch: "aaaaaaaaaaaa", duplicate: false },
      ]);
      // Rows stored from now on keep data, not frames: both kinds read back as delivered.
      const livePage = await engine.history("job:old", 0, 10);
      expect(livePage.events.map((e) => e.offset)).toEqual([2, 3, 4, 5]);
      expect(livePage.events[3]!.frame).toBe(eventFrame({ channel: "job:old", offset: 5, event: "step", dataJson: "null", critical: false, ts: T0 }));
      expect(await engine.publish([item("job:old", { idempotencyKey: "k-old" })])).toEqual([
        { channel: "job:old", offset: 4, epoch: "aaaaaaaaaaaa", duplicate: true },
      ]);
      expect(await engine.trim(T0 + 22 * HOUR + 1)).toEqual({ dropped: 4 });
      expect((await engine.history("job:old", 0, 10)).events.map((e) => e.offset)).toEqual([4]);
    });

    test("an older build refuses the file at start; the index it made on the way is dropped again at the next start", async () => {
      const dataDir = await tempDir();
      const clock = { now: T0 - 2 * HOUR };
      let { engine } = await started(dataDir, { now: () => clock.now });
      await engine.publish([item("job:new"), item("job:new", { critical: true })]);
      await engine.close();
      // An older build's start: its schema (the index included), then its statements, which name `frame`.
      const old = new Database(join(dataDir, "courier.db"));
      old.run("CREATE INDEX IF NOT EXISTS events_age ON events (critical, ts)");
      expect(() => old.query(`INSERT INTO events (channel, "offset", event, critical, coalesce, ts, frame, idem) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)`)).toThrow(/frame/);
      expect(() => old.query(`SELECT channel, "offset", event, critical, coalesce, ts, frame FROM events WHERE channel = ?1`)).toThrow(/frame/);
      old.close();

      clock.now = T0;
      ({ engine } = await started(dataDir, { now: () => clock.now }));
      expect(schemaOf(dataDir).indexes).toEqual(["events_coalesce", "events_idem"]);
      expect(await engine.history("job:new", 0, 10)).toMatchObject({ offset: 2, events: [{ offset: 1 }, { offset: 2 }], trimmedThrough: 0 });
      expect(await engine.trim(T0)).toEqual({ dropped: 1 });
      expect(await engine.trim(T0 + 22 * HOUR + 1)).toEqual({ dropped: 1 });
      expect(await engine.history("job:new", 0, 10)).toMatchObject({ offset: 2, events: [], trimmedThrough: 2 });
    });
  });
});
