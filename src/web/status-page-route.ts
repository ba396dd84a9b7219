/**
 * Serves the status page at `/`: bundled once per process (page-bundle.ts) so the page and its
 * assets carry our security headers; the token travels in the page URL, so no referrer and no framing.
 */
import type { Extension } from "../server/extension.ts";
import { bundlePage, pageRoutes } from "./page-bundle.ts";

/**
 * The status page as a server extension: `GET /` and its hashed assets.
 *
 * @example
 * startCourier({ ..., extensions: (ctx) => [await statusPage()] })
 */
export async function statusPage(): Promise<Extension> {
  return { routes: pageRoutes("/", await bundlePage("index.html")) };
}
