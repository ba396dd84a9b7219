/**
 * `bun run token <user> [--tier pro] [--channels a:b,c:d] [--ttl 3600]`: prints a development token
 * signed with this environment's secret (never for production).
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../config/load.ts";
import { signToken } from "../auth/tokens.ts";
import { TIERS, type Tier } from "../protocol/codes.ts";

const { values, positionals } = parseArgs({
  args: Bun.argv.slice(2),
  options: { tier: { type: "string", default: "starter" }, channels: { type: "string" }, ttl: { type: "string" } },
  allowPositionals: true,
});
const user = positionals[0];
const fail = (message: string): never => {
  process.stderr.write(`${message}\n`);
  process.exit(1);
};
if (!user) fail("usage: bun run token <user> [--tier starter|pro|enterprise] [--channels kind:name,…] [--ttl seconds]");
if (!TIERS.includes(values.tier as Tier)) fail(`--tier must be one of ${TIERS.join(", ")}`);
const config = await loadConfig().catch((error: Error) => fail(error.message));
if (config.env === "production") fail("refusing to mint tokens for production");
if (!config.auth.jwtSecret) fail("COURIER_JWT_SECRET is not set for this environment");
const claims: { sub: string; tier: Tier; channels?: string[] } = { sub: user!, tier: values.tier as Tier };
if (values.channels) claims.channels = values.channels.split(",").filter(Boolean);
process.stdout.write(`${await signToken(config.auth.jwtSecret!, claims, Number(values.ttl ?? config.auth.devTokenTtlS))}\n`);
