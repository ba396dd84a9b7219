/**
 * A TCP proxy to Redis that a test controls: take it down and bring it back on the same port
 * ("Redis is down" without stopping a shared Redis), stall it (a Redis that hangs with its
 * connections open), point it at another Redis (a failover behind a stable address), or hold back the first command carrying a marker (and everything its
 * connection sends after it) until `release`, so that command reaches Redis only after the client
 * gave up on it: a timed-out command that still runs.
 */
import type { Socket, TCPSocketListener } from "bun";

/** `held`: bytes from the client before its upstream connection is open; `holding`: held back by `holdCommand`. */
type Pipe = { peer: Socket<Pipe> | null; pending: Uint8Array[]; held: Uint8Array[]; client: boolean; holding: Uint8Array[] | null };

/**
 * @example
 * const proxy = redisProxy(new URL("redis://127.0.0.1:6379"));
 * proxy.up();
 * const held = proxy.holdCommand(PUBLISH.sha);
 * // … a publish through the proxy times out …
 * proxy.release();
 */
export function redisProxy(initialTarget: URL) {
  let target = initialTarget;
  const open = new Set<Socket<Pipe>>();
  let server: TCPSocketListener<Pipe> | null = null;
  let port = 0;
  /** Swallows every byte: a Redis that hangs with its connections still open. */
  let stalled = false;
  let hold: { marker: string; resolve: () => void } | null = null;
  const holding = new Set<Socket<Pipe>>();
  const decoder = new TextDecoder();
  const write = (to: Socket<Pipe>, chunk: Uint8Array) => {
    if (stalled) return;
    const q = to.data.pending;
    if (q.length > 0) return void q.push(chunk.slice());
    const n = to.write(chunk);
    if (n < chunk.length) q.push(chunk.slice(Math.max(0, n)));
  };
  const handlers = {
    data(s: Socket<Pipe>, chunk: Uint8Array) {
      if (s.data.client) {
        if (s.data.holding) return void s.data.holding.push(chunk.slice());
        // A marker split across two chunks is missed: the test then times out, it never passes wrongly.
        if (hold && decoder.decode(chunk).includes(hold.marker)) {
          s.data.holding = [chunk.slice()];
          holding.add(s);
          hold.resolve();
          hold = null;
          return;
        }
      }
      if (s.data.peer) write(s.data.peer, chunk);
      else s.data.held.push(chunk.slice());
    },
    drain(s: Socket<Pipe>) {
      const q = s.data.pending;
      while (q.length > 0) {
        const chunk = q[0]!;
        const n = s.write(chunk);
        if (n < chunk.length) return void (q[0] = chunk.slice(Math.max(0, n)));
        q.shift();
      }
    },
    close(s: Socket<Pipe>) {
      open.delete(s);
      s.data.peer?.end();
    },
    error(s: Socket<Pipe>) {
      s.end();
    },
  };
  const pipe = (client: boolean, peer: Socket<Pipe> | null): Pipe => ({ peer, pending: [], held: [], client, holding: null });
  return {
    get port() {
      return port;
    },
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    up() {
      server = Bun.listen<Pipe>({
        hostname: "127.0.0.1",
        port,
        socket: {
          ...handlers,
          async open(client) {
            client.data = pipe(true, null);
            open.add(client);
            try {
              const upstream = await Bun.connect<Pipe>({
                hostname: target.hostname,
                port: Number(target.port || 6379),
                data: pipe(false, client),
                socket: handlers,
              });
              open.add(upstream);
              client.data.peer = upstream;
              for (const c of client.data.held.splice(0)) write(upstream, c);
            } catch {
              client.end();
            }
          },
        },
      });
      port = server.port;
    },
    stall() {
      stalled = true;
    },
    down() {
      stalled = false;
      server?.stop(true);
      server = null;
      for (const s of open) s.terminate();
      open.clear();
    },
    /**
     * Points new connections at `to` and drops the current ones: a failover behind a stable
     * address (a virtual IP, DNS, a proxy), as clients see it.
     */
    retarget(to: URL) {
      target = to;
      for (const s of open) s.terminate();
      open.clear();
    },
    /** Resolves once a client sent a command containing `marker`; it and what follows wait for `release`. */
    holdCommand(marker: string): Promise<void> {
      const { promise, resolve } = Promise.withResolvers<void>();
      hold = { marker, resolve };
      return promise;
    },
    /** Sends everything held back, in order. */
    release() {
      for (const s of holding) {
        const q = s.data.holding ?? [];
        s.data.holding = null;
        if (s.data.peer) for (const c of q) write(s.data.peer, c);
      }
      holding.clear();
    },
  };
}

export type RedisProxy = ReturnType<typeof redisProxy>;
