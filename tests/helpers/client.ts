/**
 * A raw WebSocket test client: records every frame, and lets a test await the next frame that
 * matches, or the close. No sleeps: every wait is on an event, bounded by a timeout.
 */

export interface Frame {
  type: string;
  [key: string]: any;
}

export interface TestClient {
  ws: WebSocket;
  frames: Frame[];
  /** Resolves with the first frame (already received or future) matching `match`, after `from`. */
  next(match: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  /** Waits for `count` frames matching `match` in total. */
  collect(match: (f: Frame) => boolean, count: number, timeoutMs?: number): Promise<Frame[]>;
  send(frame: unknown): void;
  request(frame: Record<string, unknown>, timeoutMs?: number): Promise<Frame>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

let ids = 1;

/** Opens a connection and resolves once it is open (or rejects with the refusal). */
export function connect(url: string, options: { headers?: Record<string, string> } = {}): Promise<TestClient> {
  const ws = new WebSocket(url, options.headers ? ({ headers: options.headers } as never) : undefined);
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  const closed = Promise.withResolvers<{ code: number; reason: string }>();
  ws.onmessage = (m) => {
    frames.push(JSON.parse(String(m.data)));
    for (const w of [...waiters]) w();
  };
  ws.onclose = (e) => {
    closed.resolve({ code: e.code, reason: e.reason });
    for (const w of [...waiters]) w();
  };
  const opened = Promise.withResolvers<TestClient>();
  const waitFor = <T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const attempt = () => {
        const value = check();
        if (value !== undefined) {
          cleanup();
          resolve(value);
        } else if (ws.readyState === WebSocket.CLOSED) {
          // Let a final check happen on frames that arrived before the close.
          cleanup();
          reject(new Error(`connection closed while waiting for ${what}; frames: ${JSON.stringify(frames.slice(-5))}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last frames: ${JSON.stringify(frames.slice(-5))}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(attempt);
      };
      waiters.add(attempt);
      attempt();
    });
  const client: TestClient = {
    ws,
    frames,
    next: (match, timeoutMs = 5000) => waitFor(() => frames.find(match), timeoutMs, "a matching frame"),
    collect: (match, count, timeoutMs = 10000) =>
      waitFor(
        () => {
          const found = frames.filter(match);
          return found.length >= count ? found : undefined;
        },
        timeoutMs,
        `${count} matching frames`,
      ),
    send: (frame) => ws.send(typeof frame === "string" ? frame : JSON.stringify(frame)),
    request: (frame, timeoutMs = 5000) => {
      const id = frame.id ?? ids++;
      ws.send(JSON.stringify({ ...frame, id }));
      return waitFor(() => frames.find((f) => f.id === id), timeoutMs, `the answer to ${String(frame.type)} ${id}`);
    },
    closed: closed.promise,
    close: () => ws.close(),
  };
  ws.onopen = () => opened.resolve(client);
  ws.onerror = () => opened.reject(new Error("connection refused"));
  return opened.promise;
}

/** Opens a connection and waits for the welcome frame. */
export async function connectWelcomed(url: string): Promise<TestClient & { welcome: Frame }> {
  const client = await connect(url);
  const welcome = await client.next((f) => f.type === "welcome");
  return Object.assign(client, { welcome });
}

/** The HTTP status of an upgrade attempt that is refused (fetch with upgrade headers). */
export async function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url.replace(/^ws/, "http"), {
    headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", ...headers },
  });
}
