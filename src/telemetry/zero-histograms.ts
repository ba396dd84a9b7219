/**
 * Zero-count histogram series for `/metrics`. The OpenTelemetry JS SDK exports a histogram only
 * after its first recording, so on a fresh node a dashboard panel or an alert on, say, fan-out
 * latency would read "no data". Recording a made-up value would lie; a series with count 0, sum 0
 * and every bucket 0 is the truth. Only the label sets a histogram names as known (`HistogramSpec.zero`)
 * are added, and only while the SDK has no point for them.
 */
import {
  AggregationTemporality,
  DataPointType,
  InstrumentType,
  type HistogramMetricData,
  type MetricData,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import { ValueType } from "@opentelemetry/api";
import { attributesKey } from "./cardinality.ts";
import type { HistogramSpec } from "./metrics.ts";

/**
 * `resourceMetrics` with a zero-count point for every known label set that has none. Copies what
 * it changes: the SDK's objects are shared with other readers.
 *
 * @example
 * serializer.serialize(withZeroHistograms((await reader.collect()).resourceMetrics, histograms));
 */
export function withZeroHistograms(resourceMetrics: ResourceMetrics, specs: readonly HistogramSpec[]): ResourceMetrics {
  const [first, ...rest] = resourceMetrics.scopeMetrics;
  const scope = first ?? { scope: { name: "courier" }, metrics: [] };
  const byName = new Map<string, MetricData>(resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.map((m) => [m.descriptor.name, m] as const)));
  const now: [number, number] = [Math.floor(Date.now() / 1000), 0];
  const added: MetricData[] = [];
  const replaced = new Map<MetricData, MetricData>();
  for (const spec of specs) {
    const existing = byName.get(spec.name) as HistogramMetricData | undefined;
    const have = new Set((existing?.dataPoints ?? []).map((p) => attributesKey(p.attributes)));
    const missing = spec.zero.filter((attributes) => !have.has(attributesKey(attributes)));
    if (missing.length === 0) continue;
    const points = missing.map((attributes) => ({
      attributes,
      startTime: now,
      endTime: now,
      value: { buckets: { boundaries: spec.boundaries, counts: new Array(spec.boundaries.length + 1).fill(0) }, sum: 0, count: 0 },
    }));
    if (existing) {
      replaced.set(existing, { ...existing, dataPoints: [...existing.dataPoints, ...points] });
    } else {
      added.push({
        descriptor: { name: spec.name, description: spec.description, unit: spec.unit, type: InstrumentType.HISTOGRAM, valueType: ValueType.DOUBLE },
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints: points,
      } as HistogramMetricData);
    }
  }
  if (added.length === 0 && replaced.size === 0) return resourceMetrics;
  const swap = (metrics: MetricData[]) => metrics.map((m) => replaced.get(m) ?? m);
  return {
    ...resourceMetrics,
    scopeMetrics: [{ ...scope, metrics: [...swap(scope.metrics), ...added] }, ...rest.map((s) => ({ ...s, metrics: swap(s.metrics) }))],
  };
}
