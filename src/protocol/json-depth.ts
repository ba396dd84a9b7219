const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/** Index of the quote closing the string opened at `open`, or -1 (one preceded by an even run of backslashes). */
function closingQuote(text: string, open: number): number {
  let j = open;
  for (;;) {
    j = text.indexOf('"', j + 1);
    if (j === -1) return -1;
    let slashes = 0;
    while (text.charCodeAt(j - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return j;
  }
}

/**
 * Whether JSON `text` nests objects/arrays deeper than `maxDepth`, by a linear scan that jumps over
 * strings. Runs before JSON.parse, so a hostile depth never reaches recursive code.
 *
 * @example
 * exceedsDepth('{"a":[[1]]}', 2) // true
 */
export function exceedsDepth(text: string, maxDepth: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = closingQuote(text, i);
      if (end === -1) return false; // unterminated string: JSON.parse reports it
      i = end;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

const COLON = 0x3a;
const COMMA = 0x2c;

/** Whether the char code is JSON whitespace (space, tab, newline, carriage return). */
const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

/**
 * Whether the top-level `"items"` array of a JSON object body holds more than `maxItems` elements,
 * by a linear scan that stops as soon as it does, before anything is parsed: a 4 MiB batch of `{}`
 * is a million objects for JSON.parse to build just to be refused by its count. Only a key written
 * `"items"` is seen (an escaped spelling is left to the count after parsing), and only its first
 * occurrence; false also for text that is not such an object.
 *
 * @example
 * batchItemsExceed('{"items":[{},{},{}]}', 2) // true
 * batchItemsExceed('{"items":[{"a":[1,2,3]}]}', 2) // false: commas below the array's own level do not count
 */
export function batchItemsExceed(text: string, maxItems: number): boolean {
  let depth = 0;
  let lastKeyIsItems = false;
  let inItems = false;
  // Elements of the items array seen so far: its first value makes 1, each comma at its level one more.
  let elements = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const inItemsLevel = inItems && depth === 2;
    if (inItemsLevel && elements === 0 && !isSpace(c) && c !== CLOSE_BRACKET && ++elements > maxItems) return true;
    if (c === QUOTE) {
      const end = closingQuote(text, i);
      if (end === -1) return false;
      if (depth === 1) {
        let k = end + 1;
        while (k < text.length && isSpace(text.charCodeAt(k))) k++;
        // A key at the top level: remember whether it is "items" for the value that follows.
        if (text.charCodeAt(k) === COLON) lastKeyIsItems = end - i === 6 && text.startsWith("items", i + 1);
      }
      i = end;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
      if (depth === 2 && c === OPEN_BRACKET && lastKeyIsItems) inItems = true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
      // The items array closed: only its first occurrence is counted.
      if (inItems && depth === 1) return false;
    } else if (c === COMMA) {
      if (inItemsLevel && ++elements > maxItems) return true;
      if (depth === 1) lastKeyIsItems = false;
    }
  }
  return false;
}
