/**
 * local-histograms.ts against the SDK's own histogram: the same recordings, collected by a
 * cumulative and a delta reader several times, give the same metric data.
 */
import { describe, expect, test } from "bun:test";
import type { Attributes } from "@opentelemetry/api";
import {
  AggregationTemporality,
  MeterProvider,
  MetricReader,
  type HistogramMetricData,
  type MetricProducer,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import { CARDINALITY_LIMIT } from "../../src/telemetry/cardinality.ts";
import { LocalHistograms } from "../../src/telemetry/local-histograms.ts";
import { REMOTE_BUCKETS_S } from "../../src/telemetry/metrics.ts";
import { withMergedScopes } from "../../src/telemetry/push-readers.ts";

class TestReader extends MetricReader {
  constructor(temporality: AggregationTemporality, metricProducers?: MetricProducer[]) {
    super({ aggregationTemporalitySelector: () => temporality, metricProducers });
  }
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

const NAME = "http.server.request.duration";
const DESCRIPTION = "Duration of HTTP server requests";

/** The SDK's histogram and ours, each behind its own reader of `temporality`. */
function pair(temporality: AggregationTemporality) {
  const sdkReader = new TestReader(temporality);
  const sdk = new MeterProvider({ readers: [sdkReader] })
    .getMeter("courier")
    .createHistogram(NAME, { description: DESCRIPTION, unit: "s", advice: { explicitBucketBoundaries: [...REMOTE_BUCKETS_S] } });
  const local = new LocalHistograms();
  const localReader = new TestReader(temporality, [local.producer(temporality)]);
  new MeterProvider({ readers: [localReader] });
  const ours = local.histogram({ name: NAME, description: DESCRIPTION, unit: "s", boundaries: REMOTE_BUCKETS_S });
  return {
    record(value: number, attributes?: Attributes) {
      sdk.record(value, attributes);
      ours.record(value, attributes);
    },
    async collect() {
      return { sdk: histogramOf((await sdkReader.collect()).resourceMetrics), ours: histogramOf((await localReader.collect()).resourceMetrics) };
    },
  };
}

function histogramOf(resourceMetrics: ResourceMetrics) {
  const metric = withMergedScopes(resourceMetrics).scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === NAME) as HistogramMetricData | undefined;
  if (!metric) return undefined;
  const { name, description, unit, valueType } = metric.descriptor;
  return {
    descriptor: { name, description, unit, valueType },
    aggregationTemporality: metric.aggregationTemporality,
    dataPointType: metric.dataPointType,
    points: metric.dataPoints
      .map((p) => ({ attributes: p.attributes, value: p.value }))
      .sort((a, b) => (JSON.stringify(a.attributes) < JSON.stringify(b.attributes) ? -1 : 1)),
  };
}

const route = (status: number) => Object.freeze({ "http.request.method": "POST", "http.route": "/v1/publish", "http.response.status_code": status, "url.scheme": "http" });

describe("LocalHistograms gives what the SDK's histogram gives", () => {
  for (const temporality of [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA]) {
    const kind = temporality === AggregationTemporality.CUMULATIVE ? "cumulative" : "delta";

    test(`${kind}: buckets at and between boundaries, sums, counts, min and max, over three collections`, async () => {
      const h = pair(temporality);
      expect(await h.collect()).toEqual({ sdk: undefined, ours: undefined });
      const ok = route(200);
      const unavailable = route(503);
      for (const v of [0, 0.001, 0.0010001, 0.0003, 30, 31, 1e9, 0.25, 0.25, 14.9]) h.record(v, ok);
      h.record(0.002, unavailable);
      // Ignored by both: negative, NaN.
      h.record(-1, ok);
      h.record(Number.NaN, ok);
      let { sdk, ours } = await h.collect();
      expect(ours).toEqual(sdk);
      expect(ours!.points).toHaveLength(2);

      // One set only in this interval: a delta reader reports it alone.
      for (const v of [0.004, 0.5, 7]) h.record(v, ok);
      ({ sdk, ours } = await h.collect());
      expect(ours).toEqual(sdk);

      ({ sdk, ours } = await h.collect());
      expect(ours).toEqual(sdk);
      h.record(0.01, unavailable);
      ({ sdk, ours } = await h.collect());
      expect(ours).toEqual(sdk);
    });

    test(`${kind}: attribute objects are matched by content, whatever their key order or freezing, or absent`, async () => {
      const h = pair(temporality);
      h.record(0.01, { b: "x", a: 1 });
      h.record(0.02, { a: 1, b: "x" });
      h.record(0.03, Object.freeze({ a: 1, b: "x" }));
      h.record(0.04, Object.freeze({ a: 2, b: "x" }));
      h.record(0.05);
      h.record(0.06, {});
      const { sdk, ours } = await h.collect();
      expect(ours).toEqual(sdk);
      expect(ours!.points.map((p) => p.value.count).sort()).toEqual([1, 2, 3]);
    });
  }

  test("a caller changing its attributes object after recording changes no point (the SDK keeps the object itself)", async () => {
    const local = new LocalHistograms();
    const producer = local.producer(AggregationTemporality.CUMULATIVE);
    const h = local.histogram({ name: NAME, description: DESCRIPTION, unit: "s", boundaries: [1] });
    const attributes: Attributes = { a: 1 };
    h.record(0.5, attributes);
    attributes.a = 2;
    const [point] = ((await producer.collect()).resourceMetrics.scopeMetrics[0]!.metrics[0] as HistogramMetricData).dataPoints;
    expect(point!.attributes).toEqual({ a: 1 });
  });

  test("past the cardinality limit, further sets fold into one overflow point", async () => {
    const h = pair(AggregationTemporality.CUMULATIVE);
    for (let i = 0; i < CARDINALITY_LIMIT + 100; i++) h.record(0.001 * (i % 7), { n: i });
    const { sdk, ours } = await h.collect();
    expect(ours).toEqual(sdk);
    expect(ours!.points).toHaveLength(CARDINALITY_LIMIT);
  });

  test("a delta point starts where the reader's last collection ended; a cumulative one at the set's first recording", async () => {
    const now = { ms: 1_800_000_000_000 };
    const local = new LocalHistograms({ now: () => now.ms });
    const cumulative = local.producer(AggregationTemporality.CUMULATIVE);
    const delta = local.producer(AggregationTemporality.DELTA);
    const h = local.histogram({ name: NAME, description: DESCRIPTION, unit: "s", boundaries: [1] });
    const points = async (producer: MetricProducer) =>
      ((await producer.collect()).resourceMetrics.scopeMetrics[0]?.metrics[0] as HistogramMetricData | undefined)?.dataPoints.map((p) => ({
        start: p.startTime,
        end: p.endTime,
        count: p.value.count,
      }));
    h.record(0.5);
    const first = Date.now();
    now.ms += 1000;
    const [c1, d1] = [await points(cumulative), await points(delta)];
    expect(d1).toEqual(c1!);
    expect(c1![0]!.start[0]).toBeGreaterThanOrEqual(Math.trunc(first / 1000) - 1);
    expect(c1![0]!.end).toEqual([1_800_000_001, 0]);
    h.record(2);
    now.ms += 1000;
    expect(await points(delta)).toEqual([{ start: [1_800_000_001, 0], end: [1_800_000_002, 0], count: 1 }]);
    expect(await points(cumulative)).toEqual([{ start: c1![0]!.start, end: [1_800_000_002, 0], count: 2 }]);
    now.ms += 1000;
    expect(await points(delta)).toBeUndefined();
  });
});
