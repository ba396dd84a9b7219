/** `bun run config:schema`: regenerates `config/schema.json` from the zod schema (a test fails when it drifts). */
import { join } from "node:path";
import { configSchemaText } from "../config/config-json-schema.ts";

const target = join(import.meta.dir, "..", "..", "config", "schema.json");
await Bun.write(target, configSchemaText());
process.stdout.write(`wrote ${target}\n`);
