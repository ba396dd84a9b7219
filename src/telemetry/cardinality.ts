/**
 * What our own instruments (`tally.ts`, `local-histograms.ts`) share with the OpenTelemetry SDK's:
 * its default cardinality limit, its overflow point, and its key for a label set.
 */
import type { Attributes } from "@opentelemetry/api";

/** The SDK's default cardinality limit per instrument, overflow point included. */
export const CARDINALITY_LIMIT = 2000;

/** Where label sets past {@link CARDINALITY_LIMIT} are counted, as the SDK names it. */
export const OVERFLOW_ATTRIBUTES: Attributes = Object.freeze({ "otel.metric.overflow": true });

/**
 * The SDK's `hashAttributes`: the entries sorted by key, as JSON.
 *
 * @example
 * attributesKey({ b: 1, a: "x" }) // '[["a","x"],["b",1]]'
 */
export function attributesKey(attributes: Attributes): string {
  const keys = Object.keys(attributes).sort();
  return JSON.stringify(keys.map((k) => [k, attributes[k]]));
}
