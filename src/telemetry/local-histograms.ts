/**
 * Histograms counted in typed arrays on the hot path and handed to each OpenTelemetry reader as
 * metric data when it collects (a `MetricProducer` per reader), with the SDK's own results.
 *
 * The SDK's histogram hashes its attributes on every `record` (sdk-metrics 3.1 `hashAttributes`:
 * sort the keys, then `JSON.stringify`; a frozen, reused object is hashed all the same): on the
 * publish path that was ~2 µs of ~33 per request. Here a frozen attributes object finds its cell by
 * identity, any other by the same sorted-keys text the SDK uses, and a recording is a bucket search
 * and a few additions per reader. What a reader collects is what the SDK's explicit-bucket
 * histogram gives it: same descriptor, boundaries, attributes, counts, sum, count, min and max;
 * cumulative points from a set's first recording, delta points (only sets recorded since the last
 * collection) for readers that ask for deltas; past the cardinality limit, one overflow point.
 */
import type { Attributes, Histogram } from "@opentelemetry/api";
import { ValueType } from "@opentelemetry/api";
import { emptyResource } from "@opentelemetry/resources";
import { attributesKey, CARDINALITY_LIMIT, OVERFLOW_ATTRIBUTES } from "./cardinality.ts";
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type DataPoint,
  type Histogram as HistogramValue,
  type HistogramMetricData,
  type MetricProducer,
} from "@opentelemetry/sdk-metrics";


type HrTime = [number, number];

/** As `@opentelemetry/core`'s `millisToHrTime`. */
function hrTimeOf(epochMs: number): HrTime {
  return [Math.trunc(epochMs / 1000), Math.round((epochMs % 1000) * 1e6)];
}

/** What one reader has of one attribute set: since the set's first recording, or since its last delta. */
interface Accumulation {
  counts: Float64Array;
  count: number;
  sum: number;
  min: number;
  max: number;
  startTime: HrTime;
  /**
   * Delta readers: `startTime` is already where the next point starts (the set was in the reader's
   * last collection, or was made by the recording being counted), so a recording leaves it.
   */
  reported: boolean;
}

interface Cell {
  readonly attributes: Attributes;
  /** One per reader, in the order the readers were added. */
  readonly accumulations: Accumulation[];
}

interface Reader {
  readonly temporality: AggregationTemporality;
  readonly index: number;
}

export interface LocalHistogramOptions {
  name: string;
  description: string;
  unit: string;
  /** Inclusive upper bounds, ascending (the SDK's `explicitBucketBoundaries`). */
  boundaries: readonly number[];
}

/**
 * The histograms of one meter and the readers that collect them.
 *
 * @example
 * const histograms = new LocalHistograms();
 * const prometheus = new PrometheusExporter({ preventServerStart: true, metricProducers: [histograms.producer(AggregationTemporality.CUMULATIVE)] });
 * const latency = histograms.histogram({ name: "courier_fanout_latency_seconds", description: "…", unit: "s", boundaries: [0.001, 0.01] });
 * latency.record(0.0004);
 */
export class LocalHistograms {
  readonly #histograms: LocalHistogram[] = [];
  readonly #readers: Reader[] = [];
  readonly #now: () => number;

  /** `now`: epoch milliseconds, for start and end times. */
  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? (() => performance.timeOrigin + performance.now());
  }

  histogram<A extends Attributes = Attributes>(options: LocalHistogramOptions): Histogram<A> {
    const histogram = new LocalHistogram(options, this.#readers, this.#now);
    this.#histograms.push(histogram);
    return histogram as Histogram<A>;
  }

  /**
   * The producer to give one reader (`metricProducers`), with the temporality that reader selects
   * for histograms. Each reader gets its own: a delta reader's collection resets only its own points.
   */
  producer(temporality: AggregationTemporality): MetricProducer {
    const reader: Reader = { temporality, index: this.#readers.length };
    this.#readers.push(reader);
    for (const histogram of this.#histograms) histogram.addReader();
    return {
      collect: async (): Promise<CollectionResult> => {
        const endTime = hrTimeOf(this.#now());
        const metrics = this.#histograms.map((h) => h.collect(reader, endTime)).filter((m) => m !== undefined);
        // The reader keeps its SDK result's resource; the scope is the meter's, merged by the exporters.
        return {
          resourceMetrics: { resource: emptyResource(), scopeMetrics: metrics.length === 0 ? [] : [{ scope: { name: "courier", version: "" }, metrics }] },
          errors: [],
        };
      },
    };
  }
}

class LocalHistogram implements Histogram {
  readonly #options: LocalHistogramOptions;
  readonly #boundaries: Float64Array;
  readonly #readers: readonly Reader[];
  readonly #now: () => number;
  /** Cells by the attributes' sorted-keys text; frozen attribute objects also by identity. */
  readonly #cells = new Map<string, Cell>();
  readonly #byObject = new WeakMap<object, Cell>();
  #empty: Cell | undefined;

  constructor(options: LocalHistogramOptions, readers: readonly Reader[], now: () => number) {
    this.#options = options;
    this.#boundaries = Float64Array.from(options.boundaries);
    this.#readers = readers;
    this.#now = now;
  }

  /** Like the SDK's: a negative, NaN or non-number value is ignored. */
  record(value: number, attributes?: Attributes): void {
    if (typeof value !== "number" || !(value >= 0)) return;
    const cell = attributes === undefined ? (this.#empty ??= this.#cellOf({})) : (this.#byObject.get(attributes) ?? this.#cellOf(attributes));
    const boundaries = this.#boundaries;
    // First boundary >= value: boundaries are inclusive upper bounds, the last bucket is unbounded.
    let lo = 0;
    let hi = boundaries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (boundaries[mid]! < value) lo = mid + 1;
      else hi = mid;
    }
    const accumulations = cell.accumulations;
    for (let i = 0; i < accumulations.length; i++) {
      const a = accumulations[i]!;
      if (a.count === 0 && !a.reported && this.#readers[i]!.temporality === AggregationTemporality.DELTA) a.startTime = hrTimeOf(Date.now());
      a.counts[lo] = a.counts[lo]! + 1;
      a.count++;
      a.sum += value;
      if (value < a.min) a.min = value;
      if (value > a.max) a.max = value;
    }
  }

  addReader(): void {
    for (const cell of this.#cells.values()) cell.accumulations.push(this.#accumulation(hrTimeOf(this.#now())));
  }

  collect(reader: Reader, endTime: HrTime): HistogramMetricData | undefined {
    const o = this.#options;
    const delta = reader.temporality === AggregationTemporality.DELTA;
    const points: DataPoint<HistogramValue>[] = [];
    for (const cell of this.#cells.values()) {
      const a = cell.accumulations[reader.index]!;
      if (a.count === 0) {
        a.reported = false;
        continue;
      }
      points.push({
        attributes: cell.attributes,
        startTime: a.startTime,
        endTime,
        value: { min: a.min, max: a.max, sum: a.sum, buckets: { boundaries: [...o.boundaries], counts: Array.from(a.counts) }, count: a.count },
      });
      if (delta) {
        a.counts.fill(0);
        a.count = 0;
        a.sum = 0;
        a.min = Infinity;
        a.max = -Infinity;
        a.startTime = endTime;
        a.reported = true;
      }
    }
    if (points.length === 0) return undefined;
    return {
      descriptor: { name: o.name, description: o.description, unit: o.unit, valueType: ValueType.DOUBLE },
      aggregationTemporality: reader.temporality,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints: points,
    };
  }

  #cellOf(attributes: Attributes): Cell {
    const key = attributesKey(attributes);
    let cell = this.#cells.get(key);
    if (cell === undefined) {
      if (this.#cells.size >= CARDINALITY_LIMIT - 1) return this.#overflow();
      const start = hrTimeOf(Date.now());
      // A copy the caller cannot change afterwards; frozen objects are kept as they are. Started
      // now, by the recording that makes the cell: `fresh`, so that recording does not read the
      // clock again for delta readers (a millisecond later, it would start their point elsewhere).
      cell = { attributes: Object.isFrozen(attributes) ? attributes : Object.freeze({ ...attributes }), accumulations: this.#readers.map(() => this.#accumulation(start, true)) };
      this.#cells.set(key, cell);
    }
    if (Object.isFrozen(attributes)) this.#byObject.set(attributes, cell);
    return cell;
  }

  #overflow(): Cell {
    const key = attributesKey(OVERFLOW_ATTRIBUTES);
    let cell = this.#cells.get(key);
    if (cell === undefined) {
      const start = hrTimeOf(Date.now());
      this.#cells.set(key, (cell = { attributes: OVERFLOW_ATTRIBUTES, accumulations: this.#readers.map(() => this.#accumulation(start, true)) }));
    }
    return cell;
  }

  /** `fresh`: started by the recording about to be counted, so its start needs no second reading. */
  #accumulation(startTime: HrTime, fresh = false): Accumulation {
    return { counts: new Float64Array(this.#boundaries.length + 1), count: 0, sum: 0, min: Infinity, max: -Infinity, startTime, reported: fresh };
  }
}
