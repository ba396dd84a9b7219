/**
 * The ceiling for our runtime: the least a Bun.serve pub/sub server can do and still speak Courier's
 * frame shapes (welcome, subscribed, pong, event with offset and ts). No auth, no history, no
 * validation beyond JSON.parse — whatever Courier costs on top of this is Courier's own.
 *
 * Env: PORT, HOST (default 127.0.0.1).
 */
interface Publish {
  channel: string;
  event: string;
  data?: unknown;
}

const offsets = new Map<string, number>();

function frameFor(item: Publish): string {
  const offset = (offsets.get(item.channel) ?? 0) + 1;
  offsets.set(item.channel, offset);
  return JSON.stringify({ type: "event", channel: item.channel, offset, event: item.event, data: item.data ?? null, ts: Date.now() });
}

const server = Bun.serve({
  hostname: process.env.HOST ?? "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  async fetch(req, srv) {
    const { pathname } = new URL(req.url);
    if (pathname === "/ws") {
      if (srv.upgrade(req, { data: undefined })) return;
      return new Response("upgrade failed", { status: 400 });
    }
    if (pathname === "/health") return Response.json({ status: "ok" });
    if (req.method === "POST" && pathname === "/publish") {
      const item = (await req.json()) as Publish;
      srv.publish(item.channel, frameFor(item));
      return Response.json({ channel: item.channel, offset: offsets.get(item.channel) });
    }
    if (req.method === "POST" && pathname === "/publish/batch") {
      // All publishes of a batch happen in one turn, so each socket gets them in one write.
      const { items } = (await req.json()) as { items: Publish[] };
      const results = items.map((item) => {
        srv.publish(item.channel, frameFor(item));
        return { channel: item.channel, offset: offsets.get(item.channel) };
      });
      return Response.json({ results });
    }
    return new Response("not found", { status: 404 });
  },
  websocket: {
    data: undefined as undefined,
    open(ws) {
      ws.send(JSON.stringify({ type: "welcome", session: "bare", resumed: false, user: "bench", heartbeat: 60, node: "bare" }));
    },
    message(ws, message) {
      const frame = JSON.parse(String(message)) as { type: string; id?: unknown; channel?: string };
      if (frame.type === "subscribe" && frame.channel) {
        ws.subscribe(frame.channel);
        ws.send(JSON.stringify({ type: "subscribed", id: frame.id, channel: frame.channel, epoch: "bare", offset: offsets.get(frame.channel) ?? 0 }));
      } else if (frame.type === "ping") {
        ws.send(JSON.stringify({ type: "pong", id: frame.id, ts: Date.now() }));
      }
    },
  },
});

console.log(JSON.stringify({ msg: "listening", port: server.port }));
