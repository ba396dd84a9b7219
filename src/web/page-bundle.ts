/**
 * The web pages (status page, admin page) bundled once per process with `Bun.build` (HTML
 * entrypoint, in memory) and served as routes carrying our security headers, which a bare HTML
 * import cannot.
 */
import { join } from "node:path";
import type { Extension } from "../server/extension.ts";

/** Strict CSP, no referrer, no framing: the pages hold a token or a key. */
export const PAGE_SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
} as const;

/** One page: its HTML and its hashed assets by path. */
export interface PageBundle {
  html: string;
  assets: Map<string, { body: string; type: string }>;
}

const bundles = new Map<string, Promise<PageBundle>>();

/**
 * Bundles `src/web/<file>` once per process; later calls share the result.
 *
 * @example
 * const page = await bundlePage("admin.html");
 */
export function bundlePage(file: string): Promise<PageBundle> {
  let bundle = bundles.get(file);
  if (!bundle) {
    bundle = (async () => {
      const result = await Bun.build({ entrypoints: [join(import.meta.dir, file)], minify: true, publicPath: "/assets/", target: "browser" });
      if (!result.success) throw new AggregateError(result.logs, `${file} build failed`);
      let html = "";
      const assets = new Map<string, { body: string; type: string }>();
      for (const output of result.outputs) {
        const name = output.path.replace(/^\.\//, "");
        if (name.endsWith(".html")) html = await output.text();
        else assets.set(`/assets/${name}`, { body: await output.text(), type: output.type });
      }
      return { html, assets };
    })();
    bundles.set(file, bundle);
  }
  return bundle;
}

/**
 * Routes serving `bundle` at `path` (never cached) and its assets (immutable: names are hashed).
 *
 * @example
 * const routes = pageRoutes("/admin", await bundlePage("admin.html"));
 */
export function pageRoutes(path: string, bundle: PageBundle): NonNullable<Extension["routes"]> {
  const routes: NonNullable<Extension["routes"]> = {
    [path]: { GET: () => new Response(bundle.html, { headers: { ...PAGE_SECURITY_HEADERS, "content-type": "text/html; charset=utf-8", "cache-control": "no-store" } }) },
  };
  for (const [assetPath, asset] of bundle.assets) {
    routes[assetPath] = {
      GET: () => new Response(asset.body, { headers: { ...PAGE_SECURITY_HEADERS, "content-type": asset.type, "cache-control": "public, max-age=31536000, immutable" } }),
    };
  }
  return routes;
}
