/**
 * A seeded PRNG for the fuzz suite: the same seed gives the same hostile inputs, so a failure is
 * replayed with `FUZZ_SEED=<seed> bun test tests/fuzz.test.ts`.
 */

/** The seed in effect: `FUZZ_SEED` (decimal or 0x hex) or the fixed default. */
export function fuzzSeed(fallback = 0xc0091e5): number {
  const raw = process.env.FUZZ_SEED;
  if (raw === undefined || raw === "") return fallback;
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed)) throw new RangeError(`FUZZ_SEED must be an integer, got ${JSON.stringify(raw)}`);
  return seed >>> 0;
}

/**
 * sfc32: small, fast and well distributed; plenty for input generation (not for secrets).
 *
 * @example
 * const rng = new Random(42);
 * rng.int(0, 9); // the same sequence on every run with seed 42
 */
export class Random {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(readonly seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }

  /** A float in [0, 1). */
  next(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("Cannot pick from an empty list");
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** A string of `length` characters drawn from `alphabet`. */
  string(length: number, alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"): string {
    let out = "";
    for (let i = 0; i < length; i++) out += alphabet[Math.floor(this.next() * alphabet.length)];
    return out;
  }

  /** An independent stream, so one generator's draws do not shift another's. */
  fork(): Random {
    return new Random(Math.floor(this.next() * 4294967296));
  }
}
