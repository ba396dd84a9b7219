/**
 * Counters kept as plain numbers on the hot path and handed to OpenTelemetry only when a reader
 * collects (a scrape or an OTLP push).
 *
 * A synchronous OpenTelemetry counter hashes its attributes on every `add`, once per reader
 * (sdk-metrics 3.1 `hashAttributes`: sort the keys, then `JSON.stringify` them; a reused or frozen
 * object is hashed all the same), which on the publish and connect paths cost more than the work
 * they count. A tally keys its cells by the values of its declared labels, in their declared order,
 * and an observable counter of the same name reports every cell at collection: the same family,
 * label sets and values as the synchronous counter gave.
 */
import type { Attributes, Counter, Meter, MetricOptions, ObservableResult } from "@opentelemetry/api";
import { CARDINALITY_LIMIT, OVERFLOW_ATTRIBUTES } from "./cardinality.ts";

// Label sets past CARDINALITY_LIMIT fold into one overflow cell, as the SDK's own counters do: an
// unbounded label (a channel kind is any `[a-z][a-z0-9_-]{0,31}`) must not grow the map, nor the
// exposition, without end.

/** No label value holds a NUL (they come from fixed sets and validated names), so no real cell has this key. */
const OVERFLOW_KEY = "\u0000overflow";

interface Cell {
  readonly attributes: Attributes;
  value: number;
}

/**
 * A monotonic counter with the OpenTelemetry `Counter` signature, exported as an observable
 * counter named `name`.
 *
 * @example
 * const publishes = new Tally<{ kind: string; class: string }>(meter, "courier_publishes_total", ["kind", "class"], { description: "Accepted publishes" });
 * publishes.add(1, { kind: "job", class: "critical" }); // a Map lookup, no hashing
 */
export class Tally<A extends Attributes = Attributes> implements Counter<A> {
  readonly #labels: readonly string[];
  readonly #cells = new Map<string, Cell>();

  constructor(meter: Meter, name: string, labels: readonly (keyof A & string)[], options: MetricOptions = {}) {
    this.#labels = labels;
    meter.createObservableCounter(name, options).addCallback((result) => this.#observe(result));
  }

  /** Adds `value` to the cell of `attributes`; like the SDK's counter, a negative or non-number value is ignored. */
  add(value: number, attributes?: A): void {
    if (!(value >= 0)) return;
    const key = attributes ? this.#keyOf(attributes) : "";
    const cell = this.#cells.get(key) ?? this.#open(key, attributes);
    cell.value += value;
  }

  #keyOf(attributes: A): string {
    const labels = this.#labels;
    if (labels.length === 1) return String(attributes[labels[0]!]);
    let key = "";
    for (const label of labels) key += `${attributes[label]}\u0000`;
    return key;
  }

  #open(key: string, attributes: A | undefined): Cell {
    if (this.#cells.size >= CARDINALITY_LIMIT - 1) return this.#overflow();
    // The declared labels only, copied: the caller may reuse or change its object.
    const copy: Attributes = {};
    for (const label of this.#labels) if (attributes?.[label] !== undefined) copy[label] = attributes[label];
    const cell: Cell = { attributes: copy, value: 0 };
    this.#cells.set(key, cell);
    return cell;
  }

  #overflow(): Cell {
    let cell = this.#cells.get(OVERFLOW_KEY);
    if (!cell) this.#cells.set(OVERFLOW_KEY, (cell = { attributes: OVERFLOW_ATTRIBUTES, value: 0 }));
    return cell;
  }

  #observe(result: ObservableResult): void {
    for (const cell of this.#cells.values()) result.observe(cell.value, cell.attributes);
  }
}
