/** Percentiles over latency samples, in ms. */
export interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/** Summarizes the first `n` values of `samples` (sorted in place). */
export function summarize(samples: Float64Array | number[], n = samples.length): Summary | undefined {
  if (n === 0) return undefined;
  const sorted = Float64Array.from(samples.slice(0, n) as ArrayLike<number>).sort();
  const at = (q: number) => sorted[Math.min(n - 1, Math.floor(q * n))]!;
  return { n, p50: at(0.5), p99: at(0.99), max: sorted[n - 1]! };
}

/** A growable sample buffer that never reallocates per sample. */
export class Samples {
  #values: Float64Array;
  #n = 0;

  constructor(capacity = 1024) {
    this.#values = new Float64Array(capacity);
  }

  add(value: number): void {
    if (this.#n === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#n++] = value;
  }

  get size(): number {
    return this.#n;
  }

  summary(): Summary | undefined {
    return summarize(this.#values, this.#n);
  }
}
