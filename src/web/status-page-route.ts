/**
 * Serves the status page at `/`: bundled once per process with `Bun.build` (HTML entrypoint, in
 * memory) so the page and its assets carry our security headers, which a bare HTML import cannot.
 */
import { join } from "node:path";
import type { Extension } from "../server/extension.ts";

/** The token travels in the page URL: never leak it as a referrer, never let the page be framed. */
export const PAGE_SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
} as const;

interface Built {
  html: string;
  assets: Map<string, { body: string; type: string }>;
}

let built: Promise<Built> | null = null;

function build(): Promise<Built> {
  built ??= (async () => {
    const result = await Bun.build({ entrypoints: [join(import.meta.dir, "index.html")], minify: true, publicPath: "/assets/", target: "browser" });
    if (!result.success) throw new AggregateError(result.logs, "status page build failed");
    let html = "";
    const assets = new Map<string, { body: string; type: string }>();
    for (const output of result.outputs) {
      const name = output.path.replace(/^\.\//, "");
      if (name.endsWith(".html")) html = await output.text();
      else assets.set(`/assets/${name}`, { body: await output.text(), type: output.type });
    }
    return { html, assets };
  })();
  return built;
}

/**
 * The status page as a server extension: `GET /` and its hashed assets.
 *
 * @example
 * startCourier({ ..., extensions: (ctx) => [await statusPage()] })
 */
export async function statusPage(): Promise<Extension> {
  const { html, assets } = await build();
  const routes: Extension["routes"] = {
    "/": { GET: () => new Response(html, { headers: { ...PAGE_SECURITY_HEADERS, "content-type": "text/html; charset=utf-8", "cache-control": "no-store" } }) },
  };
  for (const [path, asset] of assets) {
    routes[path] = {
      GET: () => new Response(asset.body, { headers: { ...PAGE_SECURITY_HEADERS, "content-type": asset.type, "cache-control": "public, max-age=31536000, immutable" } }),
    };
  }
  return { routes };
}
