/** A local OTLP/HTTP receiver for export tests: each POST settles the next waiter, in order. */

export interface ReceivedExport {
  path: string;
  contentType: string | null;
  /** The body as text (JSON, or protobuf whose strings are readable UTF-8). */
  body: string;
}

export function startOtlpReceiver() {
  const received: ReceivedExport[] = [];
  let next = Promise.withResolvers<ReceivedExport>();
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const request = { path: url.pathname, contentType: req.headers.get("content-type"), body: await req.text() };
      received.push(request);
      next.resolve(request);
      next = Promise.withResolvers<ReceivedExport>();
      return Response.json({});
    },
  });
  return {
    server,
    received,
    endpoint: `http://127.0.0.1:${server.port}`,
    /** The next request, or a rejection after `ms` so a broken exporter fails the test instead of hanging it. */
    nextRequest(ms = 5_000): Promise<ReceivedExport> {
      return withTimeout(next.promise, ms, "no OTLP request arrived");
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
