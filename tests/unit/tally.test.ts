import { describe, expect, test } from "bun:test";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { CARDINALITY_LIMIT } from "../../src/telemetry/cardinality.ts";
import { Tally } from "../../src/telemetry/tally.ts";

/** A private provider with one Prometheus reader, rendered as `/metrics` renders it. */
function provider() {
  const reader = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const serializer = new PrometheusSerializer(undefined, false, undefined, false, true);
  return {
    meter: meterProvider.getMeter("test"),
    render: async () => serializer.serialize((await reader.collect()).resourceMetrics),
    [Symbol.asyncDispose]: () => meterProvider.shutdown(),
  };
}

/** The sample lines of one family, without comments. */
const lines = (text: string, family: string) => text.split("\n").filter((l) => l.startsWith(family));

type Publish = { kind: string; class: string };
const adds: Array<[number, Publish | undefined]> = [
  [1, { kind: "job", class: "critical" }],
  [0, { kind: "user", class: "normal" }],
  [2, { class: "critical", kind: "job" }],
  [3, { kind: "user", class: "normal" }],
  [1.5, { kind: "signals", class: "normal" }],
];

describe("Tally", () => {
  test("renders the same family, label sets and values as the SDK's synchronous counter", async () => {
    await using a = provider();
    await using b = provider();
    const tally = new Tally<Publish>(a.meter, "courier_publishes_total", ["kind", "class"], { description: "Accepted publishes" });
    const counter = b.meter.createCounter<Publish>("courier_publishes_total", { description: "Accepted publishes" });
    for (const [value, attributes] of adds) {
      tally.add(value, attributes);
      counter.add(value, attributes);
    }
    const [fromTally, fromCounter] = [await a.render(), await b.render()];
    expect(lines(fromTally, "# TYPE courier_publishes_total")).toEqual(["# TYPE courier_publishes_total counter"]);
    expect(lines(fromTally, "courier_publishes_total").sort()).toEqual(lines(fromCounter, "courier_publishes_total").sort());
    expect(lines(fromTally, "courier_publishes_total").sort()).toEqual([
      'courier_publishes_total{kind="job",class="critical"} 3',
      'courier_publishes_total{kind="signals",class="normal"} 1.5',
      'courier_publishes_total{kind="user",class="normal"} 3',
    ]);
  });

  test("a counter without labels; negative values ignored as by the SDK, NaN too (the SDK would keep it)", async () => {
    await using p = provider();
    const tally = new Tally(p.meter, "courier_deliveries_total", []);
    tally.add(5);
    tally.add(-2);
    tally.add(Number.NaN);
    tally.add(4);
    expect(lines(await p.render(), "courier_deliveries_total")).toEqual(["courier_deliveries_total 9"]);
  });

  test("a number label and a changed attributes object keep their own series", async () => {
    await using p = provider();
    const tally = new Tally<{ code: number }>(p.meter, "courier_closes_total", ["code"]);
    const attributes = { code: 4409 };
    tally.add(1, attributes);
    attributes.code = 1000;
    tally.add(1, attributes);
    tally.add(1, { code: 4409 });
    expect(lines(await p.render(), "courier_closes_total").sort()).toEqual(['courier_closes_total{code="1000"} 1', 'courier_closes_total{code="4409"} 2']);
  });

  test("label sets past the cardinality limit fold into one overflow series", async () => {
    await using p = provider();
    const tally = new Tally<{ kind: string }>(p.meter, "courier_publishes_total", ["kind"]);
    for (let i = 0; i < CARDINALITY_LIMIT + 10; i++) tally.add(1, { kind: `k${i}` });
    tally.add(1, { kind: "k0" });
    const samples = lines(await p.render(), "courier_publishes_total");
    expect(samples.length).toBe(CARDINALITY_LIMIT);
    expect(samples).toContain('courier_publishes_total{kind="k0"} 2');
    expect(samples).toContain('courier_publishes_total{otel_metric_overflow="true"} 11');
  });
});
