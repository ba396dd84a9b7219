/**
 * docs/protocol.md documents every frame type, error code and close code defined in src/protocol:
 * the lists come from the code tables, so a code added there without a word in the reference fails.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CloseCode, ErrorCode, NotRecoveredReason, TIERS } from "../src/protocol/codes.ts";
import { ClientFrameSchema } from "../src/protocol/frames.ts";
import { SERVER_FRAME_TYPES } from "../src/protocol/server-frames.ts";
import { STREAM_STATUSES, StreamEvent } from "../src/protocol/streams.ts";

const doc = readFileSync(join(import.meta.dir, "../docs/protocol.md"), "utf8");
const lines = doc.split("\n");

/** The table rows of the section headed `title` (`### title` or `## n. title`). */
function tableRows(title: string): string[] {
  const start = lines.findIndex((l) => /^#{2,3} /.test(l) && l.includes(title));
  expect(start).toBeGreaterThan(-1);
  const rows: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (/^#{2,3} /.test(line)) break;
    if (line.startsWith("|")) rows.push(line);
  }
  return rows;
}

const missing = (names: readonly (string | number)[], present: (name: string) => boolean) => names.map(String).filter((n) => !present(n));

describe("docs/protocol.md covers src/protocol", () => {
  test("every frame type, client and server, with a frame example", () => {
    const clientTypes = ClientFrameSchema.options.map((o) => o.shape.type.value);
    expect(clientTypes.length).toBeGreaterThan(0);
    expect(missing([...clientTypes, ...SERVER_FRAME_TYPES], (t) => doc.includes(`{"type":"${t}"`))).toEqual([]);
  });

  test("every error code, in the error code table", () => {
    const rows = tableRows("Error codes");
    expect(missing(Object.values(ErrorCode), (code) => rows.some((r) => r.startsWith(`| \`${code}\``)))).toEqual([]);
  });

  test("every close code, in the close code table with reconnect advice", () => {
    const rows = tableRows("Close codes");
    expect(missing(Object.values(CloseCode), (code) => rows.some((r) => r.startsWith(`| ${code} `)))).toEqual([]);
  });

  test("recovery reasons, tiers, stream events and statuses", () => {
    const names = [...Object.values(NotRecoveredReason), ...TIERS, ...Object.values(StreamEvent), ...STREAM_STATUSES];
    expect(missing(names, (n) => doc.includes(`\`${n}\``) || doc.includes(`"${n}"`))).toEqual([]);
  });
});
