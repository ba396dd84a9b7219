/**
 * `GET /openapi.json`: a valid OpenAPI 3.1 document (checked by a real validator) describing every
 * route of the protocol reference's tables, with the auth the reference names.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import { startServer, type TestServer } from "./helpers/server.ts";

interface DocRoute {
  method: string;
  path: string;
  auth: string;
}

/** The rows of docs/protocol.md's route tables (§2 and §8): `| \`GET /path?…\` | auth | …`. */
function documentedRoutes(): DocRoute[] {
  const markdown = readFileSync(join(import.meta.dir, "../docs/protocol.md"), "utf8");
  const routes: DocRoute[] = [];
  // §2's table has an auth column; §8's names the auth in its header: `| route (API key) | body |`.
  let tableAuth: string | null = null;
  for (const line of markdown.split("\n")) {
    const header = /^\| route( \(([^)]+)\))? \|/.exec(line);
    if (header) tableAuth = header[2] ?? null;
    const row = /^\| `(GET|POST) (\/[^`?\s]*)[^`]*`[^|]*\| ([^|]*)\|/.exec(line);
    if (row) routes.push({ method: row[1]!.toLowerCase(), path: row[2]!, auth: tableAuth ?? row[3]!.trim() });
  }
  return routes;
}

/** The security scheme the reference's auth column names. */
function schemeOf(auth: string): string | null {
  if (auth.startsWith("API key")) return "apiKey";
  if (auth.startsWith("admin key")) return "adminKey";
  if (auth.startsWith("user token")) return "userToken";
  return null;
}

let server: TestServer;
let document: any;
let text: string;

beforeAll(async () => {
  server = await startServer();
  const response = await fetch(`${server.http}/openapi.json`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toStartWith("application/json");
  text = await response.text();
  document = JSON.parse(text);
});
afterAll(() => server.stop());

describe("GET /openapi.json", () => {
  test("is a valid OpenAPI 3.1 document", async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  test("describes every route of the protocol reference, with the auth it names", () => {
    const routes = documentedRoutes();
    // §2's table plus §8's: the count guards the parser.
    expect(routes.length).toBeGreaterThanOrEqual(20);
    for (const route of routes) {
      const operation = document.paths[route.path]?.[route.method];
      expect(operation ? `${route.method} ${route.path}` : `missing: ${route.method} ${route.path}`).toBe(`${route.method} ${route.path}`);
      const scheme = schemeOf(route.auth);
      expect({ route: route.path, security: operation.security }).toEqual({ route: route.path, security: scheme ? [{ [scheme]: [] }] : [] });
    }
  });

  test("every POST with a body names its schema, and every $ref resolves", () => {
    const refs = [...text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of new Set(refs)) expect(Object.keys(document.components.schemas)).toContain(ref);
    for (const [path, item] of Object.entries<any>(document.paths)) {
      if (item.post && path !== "/openapi.json") expect({ path, body: item.post.requestBody?.content["application/json"].schema.$ref }).toEqual({ path, body: expect.any(String) });
    }
  });

  test("request schemas carry the validators' rules", () => {
    const { PublishRequest, JobRequest, StreamEndRequest, StreamAppendRequest } = document.components.schemas;
    expect(PublishRequest.required).toEqual(["channel", "event"]);
    expect(new RegExp(PublishRequest.properties.channel.pattern).test("user:alice")).toBe(true);
    expect(new RegExp(PublishRequest.properties.event.pattern).test("bad event")).toBe(false);
    expect(JobRequest.required).toEqual(["owner"]);
    expect(StreamEndRequest.properties.status.enum).toEqual(["complete", "cancelled", "failed"]);
    expect(StreamAppendRequest.anyOf).toHaveLength(2);
  });

  test("errors share one body schema; 429 and 503 carry Retry-After", () => {
    const publish = document.paths["/v1/publish"].post.responses;
    expect(publish["400"].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/Error" });
    expect(Object.keys(publish["503"].headers)).toEqual(["Retry-After"]);
    expect(document.components.schemas.Error.required).toEqual(["error", "message"]);
    expect(Object.keys(document.components.securitySchemes).sort()).toEqual(["adminKey", "apiKey", "userToken"]);
  });

  test("is built once: a second request answers the same text", async () => {
    expect(await (await fetch(`${server.http}/openapi.json`)).text()).toBe(text);
  });
});
