/**
 * `bun run token <user> [--tier pro] [--channels a:b,c:d] [--ttl 3600]`: prints a development token
 * signed with this environment's secret (never for production). Exit 0 with the token on stdout;
 * 2 for a usage error, 1 when the environment cannot mint (bad config, production, no secret).
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../config/load.ts";
import { signToken } from "../auth/tokens.ts";
import { TIERS, type Tier } from "../protocol/codes.ts";

/** Longest `--ttl`: 30 days. A development token living longer is a production token by accident. */
export const MAX_TTL_S = 30 * 24 * 60 * 60;

export const USAGE = `usage: bun run token <user> [--tier ${TIERS.join("|")}] [--channels kind:name,…] [--ttl seconds]

Prints a development token for <user>, signed with the COURIER_JWT_SECRET of COURIER_ENV
(default development; refused for production).

  --tier      the token's tier claim (default starter)
  --channels  comma-separated extra channels the token may join
  --ttl       lifetime in seconds, 1-${MAX_TTL_S} (default auth.devTokenTtlS, 3600)
  -h, --help  this text

  TOKEN=$(bun run token alice --tier pro)
`;

export interface TokenCliIo {
  env?: Record<string, string | undefined>;
  stdout(text: string): void;
  stderr(text: string): void;
}

/** A usage error: its message and the usage line go to stderr, exit 2. */
class UsageError extends Error {}

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      options: {
        tier: { type: "string", default: "starter" },
        channels: { type: "string" },
        ttl: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
    });
  } catch (error) {
    // node:util names the bad option ("Unknown option '--tire'"); keep its words, drop its advice.
    throw new UsageError((error as Error).message.split("\n")[0]!.split(". ")[0]!);
  }
}

/** `--ttl` as whole seconds in 1…{@link MAX_TTL_S}. */
export function parseTtl(text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1 || Number(text) > MAX_TTL_S) {
    throw new UsageError(`--ttl must be a whole number of seconds from 1 to ${MAX_TTL_S}, got "${text}"`);
  }
  return Number(text);
}

/**
 * Runs the command; resolves with the exit code.
 *
 * @example
 * process.exitCode = await runTokenCli(["alice", "--tier", "pro"], { stdout: console.log, stderr: console.error });
 */
export async function runTokenCli(argv: string[], io: TokenCliIo): Promise<number> {
  let claims: { sub: string; tier: Tier; channels?: string[] };
  let ttlS: number | undefined;
  try {
    const { values, positionals } = parse(argv);
    if (values.help) {
      io.stdout(USAGE);
      return 0;
    }
    const [user, ...extra] = positionals;
    if (!user) throw new UsageError("a user is required");
    if (extra.length > 0) throw new UsageError(`one user only, got also "${extra.join(" ")}"`);
    if (!TIERS.includes(values.tier as Tier)) throw new UsageError(`--tier must be one of ${TIERS.join(", ")}, got "${values.tier}"`);
    claims = { sub: user, tier: values.tier as Tier };
    if (values.channels) claims.channels = values.channels.split(",").map((c) => c.trim()).filter(Boolean);
    if (values.ttl !== undefined) ttlS = parseTtl(values.ttl);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr(`${error.message}\n${USAGE.split("\n")[0]}\n`);
    return 2;
  }

  let config;
  try {
    config = await loadConfig(io.env ?? process.env);
  } catch (error) {
    io.stderr(`${(error as Error).message}\n`);
    return 1;
  }
  if (config.env === "production") {
    io.stderr("refusing to mint tokens for production\n");
    return 1;
  }
  if (!config.auth.jwtSecret) {
    io.stderr(`COURIER_JWT_SECRET is not set for ${config.env}\n`);
    return 1;
  }
  io.stdout(`${await signToken(config.auth.jwtSecret, claims, ttlS ?? config.auth.devTokenTtlS)}\n`);
  return 0;
}

if (import.meta.main) {
  process.exitCode = await runTokenCli(Bun.argv.slice(2), {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
  });
}
