/**
 * Socket.IO 4 on Node, written the way its docs suggest: one room per channel, `io.to(room).emit`
 * per publish, and an HTTP publish endpoint on the same http server. Frames carry the same fields as
 * Courier's event frames so the load side measures the same thing.
 *
 * Run with node. Env: PORT, HOST (default 127.0.0.1).
 */
import { createServer } from "node:http";
import { Server } from "socket.io";

const offsets = new Map();

function emit(item) {
  const offset = (offsets.get(item.channel) ?? 0) + 1;
  offsets.set(item.channel, offset);
  io.to(item.channel).emit("event", { type: "event", channel: item.channel, offset, event: item.event, data: item.data ?? null, ts: Date.now() });
  return { channel: item.channel, offset };
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch (error) {
        reject(error);
      }
    });
    req.on("error", reject);
  });
}

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

const httpServer = createServer(async (req, res) => {
  // socket.io answers its own path; everything else is ours.
  if (req.url.startsWith("/socket.io/")) return;
  try {
    if (req.url === "/health") return reply(res, 200, { status: "ok" });
    if (req.method === "POST" && req.url === "/publish") return reply(res, 200, emit(await readJson(req)));
    if (req.method === "POST" && req.url === "/publish/batch") {
      const { items } = await readJson(req);
      return reply(res, 200, { results: items.map(emit) });
    }
    reply(res, 404, { error: "not_found" });
  } catch (error) {
    reply(res, 400, { error: "bad_request", message: String(error) });
  }
});

const io = new Server(httpServer, { serveClient: false, transports: ["websocket"], pingInterval: 60_000, pingTimeout: 60_000 });

io.on("connection", (socket) => {
  socket.on("subscribe", (channel, ack) => {
    socket.join(channel);
    if (typeof ack === "function") ack({ type: "subscribed", channel, epoch: "sio", offset: offsets.get(channel) ?? 0 });
  });
  socket.on("rt", (id, ack) => {
    if (typeof ack === "function") ack({ type: "pong", id, ts: Date.now() });
  });
});

httpServer.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? "127.0.0.1", () => {
  console.log(JSON.stringify({ msg: "listening", port: httpServer.address().port }));
});
