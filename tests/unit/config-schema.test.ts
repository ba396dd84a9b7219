import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { configSchemaText } from "../../src/config/config-json-schema.ts";
import { ConfigSchema, ENVIRONMENTS } from "../../src/config/schema.ts";

const CONFIG_DIR = join(import.meta.dir, "../../config");
const configFiles = readdirSync(CONFIG_DIR).filter((name) => name.endsWith(".json") && name !== "schema.json");

describe("config/schema.json", () => {
  test("equals a fresh generation from the zod schema (run `bun run config:schema` after a schema change)", async () => {
    expect(await Bun.file(join(CONFIG_DIR, "schema.json")).text()).toBe(configSchemaText());
  });

  test("there is one config file per environment", () => {
    expect(configFiles.sort()).toEqual(ENVIRONMENTS.map((env) => `${env}.json`).sort());
  });

  test.each(configFiles)("%s points at the schema and validates", async (name) => {
    const file = await Bun.file(join(CONFIG_DIR, name)).json();
    expect(file.$schema).toBe("./schema.json");
    const result = ConfigSchema.omit({ env: true }).safeParse(file);
    expect(result.error?.issues ?? []).toEqual([]);
  });

  test("the schema describes every field and refuses unknown keys at every level", () => {
    const schema = JSON.parse(configSchemaText());
    const undocumented: string[] = [];
    const open: string[] = [];
    const walk = (node: any, path: string) => {
      if (path && !node.description) undocumented.push(path);
      if (node.type === "object" && node.properties) {
        if (node.additionalProperties !== false) open.push(path || "(root)");
        for (const [key, child] of Object.entries(node.properties)) walk(child, path ? `${path}.${key}` : key);
      }
    };
    walk(schema, "");
    // Sections are documented in the README and in schema.ts, not field by field.
    expect(undocumented.filter((path) => path.includes("."))).toEqual([]);
    expect(open).toEqual([]);
  });
});
