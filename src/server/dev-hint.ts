/**
 * The human hint a developer sees after the JSON `listening` line, in development only: where the
 * data is, where the status page is, how to get a token and publish. On stderr, so stdout stays one
 * JSON object per line for log shippers. Never a secret: it says where the keys are, not what.
 */
import { resolve } from "node:path";
import type { Config } from "../config/schema.ts";

/**
 * The hint for a server listening on `url`, or `undefined` outside development.
 *
 * @example
 * devHint(config, new URL("http://127.0.0.1:8080/"));
 */
export function devHint(config: Config, url: URL): string | undefined {
  if (config.env !== "development") return undefined;
  const base = new URL(url);
  // The listener's own address may be a wildcard a browser cannot open.
  if (["0.0.0.0", "[::]", "127.0.0.1"].includes(base.hostname)) base.hostname = "localhost";
  const origin = base.origin;
  const store = config.cluster.redisUrl
    ? `Redis (cluster mode, node ${config.cluster.nodeId}), COURIER_REDIS_URL`
    : `${resolve(config.store.dataDir)} (embedded store; COURIER_DATA_DIR moves it)`;
  const lines = [
    "",
    `Courier is running in development on ${origin}`,
    `  data:        ${store}`,
  ];
  if (config.auth.jwtSecret) {
    lines.push(
      `  a token:     TOKEN=$(bun run token alice --tier pro)`,
      `               TOKEN=$(curl -s '${origin}/dev/token?user=alice&tier=pro&format=text')`,
      `  status page: ${origin}/?token=$TOKEN`,
    );
  } else {
    lines.push(`  status page: ${origin}/  (tokens need COURIER_JWT_SECRET or a JWKS issuer)`);
  }
  const metrics = new URL(base);
  if (config.server.metricsPort) metrics.port = String(config.server.metricsPort);
  lines.push(
    `  publish:     curl -s ${origin}/v1/publish -H "Authorization: Bearer $COURIER_API_KEY" \\`,
    `                 -d '{"channel":"user:alice","event":"hello","data":{}}'`,
    `               (export COURIER_API_KEY=<auth.apiKey of config/development.json> first)`,
    `  metrics:     ${metrics.origin}/metrics   ready: ${origin}/ready`,
    "",
  );
  return lines.join("\n");
}

/** Writes {@link devHint} to stderr when there is one: the one call after the `listening` log line. */
export function printDevHint(config: Config, url: URL, write: (text: string) => void = (text) => void process.stderr.write(text)): void {
  const hint = devHint(config, url);
  if (hint) write(hint);
}
