import { afterEach, describe, expect, jest, test } from "bun:test";
import { CourierClient, signalsFor, TIERS, type CourierEvent } from "../../packages/client/src/index.ts";
import { setup } from "./client-fakes.ts";

afterEach(() => {
  jest.useRealTimers();
});

type Events = { job_progress: { percent: number }; job_completed: { ok: boolean } };

describe("typed events", () => {
  test('on("event:<name>") hears the delivered events of that name only, after the channel handlers', () => {
    const { client: untyped, ws } = setup();
    // setup() builds an untyped client; the event map only changes the types.
    const client = untyped as unknown as CourierClient<Events>;
    const seen: string[] = [];
    client.subscribe("job:1", (e) => seen.push(`handler ${e.event}`));
    client.on("event:job_progress", (e) => seen.push(`progress ${e.data.percent}`));
    client.on("event:job_completed", (e) => seen.push(`completed ${e.data.ok}`));
    client.connect();
    ws.last().welcome();
    ws.last().receive({ type: "subscribed", id: 1, channel: "job:1", epoch: "e1", offset: 0 });
    ws.last().receive({ type: "event", channel: "job:1", offset: 1, event: "job_progress", data: { percent: 40 }, ts: 0 });
    ws.last().receive({ type: "event", channel: "job:1", offset: 2, event: "job_completed", data: { ok: true }, ts: 0 });
    ws.last().receive({ type: "event", channel: "job:1", offset: 2, event: "job_completed", data: { ok: true }, ts: 0 }); // duplicate
    expect(seen).toEqual(["handler job_progress", "progress 40", "handler job_completed", "completed true"]);
    client.close();
  });

  test("checking event narrows data; unknown names and fields do not compile; untyped clients take any name", () => {
    // Compile-time only (`bun run typecheck` fails if an expected error disappears).
    const typedUsage = (client: CourierClient<Events>) => {
      client.subscribe("job:1", (e: CourierEvent<Events>) => {
        if (e.event === "job_progress") void (e.data.percent satisfies number);
        // @ts-expect-error: job_completed carries ok, not percent
        if (e.event === "job_completed") void e.data.percent;
      });
      // @ts-expect-error: not an event of the map
      client.on("event:job_unknown", () => {});
      client.on("event:job_completed", (e) => void (e.data.ok satisfies boolean));
    };
    const untypedUsage = (client: CourierClient) => {
      client.on("event:anything", (e) => void (e.data satisfies unknown));
      client.subscribe("user:a", (e) => void (e.event satisfies string));
    };
    expect([typeof typedUsage, typeof untypedUsage]).toEqual(["function", "function"]);
  });
});

describe("signalsFor", () => {
  test("lists the signals channels of the tier and every tier below, in tier order", () => {
    expect(TIERS.map((tier) => signalsFor(tier))).toEqual([
      ["signals:starter"],
      ["signals:starter", "signals:pro"],
      ["signals:starter", "signals:pro", "signals:enterprise"],
    ]);
    expect(() => signalsFor("gold" as never)).toThrow(TypeError);
  });
});
