/**
 * Whether JSON text nests deeper than `max`, by a linear scan that skips strings. Runs before
 * JSON.parse so a hostile frame cannot build a deep structure first.
 *
 * @example
 * exceedsDepth('{"a":[[1]]}', 2) // true
 */
export function exceedsDepth(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > max) return true;
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return false;
}
