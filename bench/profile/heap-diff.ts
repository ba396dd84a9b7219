/**
 * Compares two JSC heap snapshots (`Bun.generateHeapSnapshot()`, written by heap-hook.ts with
 * `--snapshot`): objects and self bytes per class, per unit of `--per` (connections), and the
 * shape of plain objects that grew, named by their property names (ConnData, Principal, …).
 *
 *   bun bench/profile/heap-diff.ts <before.heapsnapshot> <after.heapsnapshot> --per 3000
 */
import { readFileSync } from "node:fs";

interface Snapshot {
  nodes: number[];
  nodeClassNames: string[];
  edges: number[];
  edgeTypes: string[];
  edgeNames: string[];
}

const [beforeFile, afterFile] = process.argv.slice(2);
const perIndex = process.argv.indexOf("--per");
const per = perIndex > 0 ? Number(process.argv[perIndex + 1]) : 1;

/** Per class: count and bytes; per plain-object shape (sorted property names): count and bytes. */
function summarize(file: string) {
  const s = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const classes = new Map<string, { count: number; bytes: number }>();
  const size = new Map<number, number>();
  const cls = new Map<number, string>();
  for (let i = 0; i < s.nodes.length; i += 4) {
    const id = s.nodes[i]!;
    const name = s.nodeClassNames[s.nodes[i + 2]!]!;
    const bytes = s.nodes[i + 1]!;
    size.set(id, bytes);
    cls.set(id, name);
    const c = classes.get(name) ?? { count: 0, bytes: 0 };
    c.count++;
    c.bytes += bytes;
    classes.set(name, c);
  }
  const props = new Map<number, string[]>();
  const propertyType = s.edgeTypes.indexOf("Property");
  const butterflyOwner = new Map<number, number>();
  for (let i = 0; i < s.edges.length; i += 4) {
    const from = s.edges[i]!;
    const to = s.edges[i + 1]!;
    if (s.edges[i + 2] === propertyType) {
      const list = props.get(from) ?? [];
      list.push(s.edgeNames[s.edges[i + 3]!]!);
      props.set(from, list);
    }
    if (cls.get(to) === "Cell Butterfly") butterflyOwner.set(to, from);
  }
  const shapes = new Map<string, { count: number; bytes: number }>();
  for (const [id, name] of cls) {
    if (name !== "Object" && name !== "Set" && name !== "Map") continue;
    const keys = (props.get(id) ?? []).sort().slice(0, 8).join(",");
    const key = `${name} {${keys}}`;
    const c = shapes.get(key) ?? { count: 0, bytes: 0 };
    c.count++;
    c.bytes += size.get(id)!;
    shapes.set(key, c);
  }
  const butterflies = new Map<string, { count: number; bytes: number }>();
  for (const [b, owner] of butterflyOwner) {
    const keys = (props.get(owner) ?? []).sort().slice(0, 4).join(",");
    // Large ones are the node-wide tables (manager's Sets and Maps) growing, not one per socket.
    const key = `${cls.get(owner)} {${keys}}${size.get(b)! > 4096 ? " (large: a node-wide table)" : ""}`;
    const c = butterflies.get(key) ?? { count: 0, bytes: 0 };
    c.count++;
    c.bytes += size.get(b)!;
    butterflies.set(key, c);
  }
  return { classes, shapes, butterflies };
}

function diff(title: string, a: Map<string, { count: number; bytes: number }>, b: Map<string, { count: number; bytes: number }>) {
  const rows = [...new Set([...a.keys(), ...b.keys()])]
    .map((k) => {
      const x = a.get(k) ?? { count: 0, bytes: 0 };
      const y = b.get(k) ?? { count: 0, bytes: 0 };
      return { k, count: (y.count - x.count) / per, bytes: (y.bytes - x.bytes) / per };
    })
    .filter((r) => Math.abs(r.count) >= 0.05 || Math.abs(r.bytes) >= 4)
    .sort((p, q) => q.bytes - p.bytes);
  console.log(`\n### ${title}\n\n| what | objects per unit | self bytes per unit |\n|---|---:|---:|`);
  for (const r of rows.slice(0, 25)) console.log(`| \`${r.k.slice(0, 110)}\` | ${r.count.toFixed(2)} | ${r.bytes.toFixed(0)} |`);
  console.log(`| total | ${rows.reduce((t, r) => t + r.count, 0).toFixed(2)} | ${rows.reduce((t, r) => t + r.bytes, 0).toFixed(0)} |`);
}

const before = summarize(beforeFile!);
const after = summarize(afterFile!);
diff("by class", before.classes, after.classes);
diff("plain objects, Sets and Maps by shape (first 8 property names)", before.shapes, after.shapes);
diff("butterflies (out-of-line property storage) by owner", before.butterflies, after.butterflies);
