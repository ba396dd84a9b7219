/**
 * The hub's transport over Bun.serve: translation only, every rule lives in the hub. Topics are
 * Bun's native pub/sub, so one `publish` writes the same bytes to every subscriber from native code.
 */
import type { Server, ServerWebSocket } from "bun";
import type { ConnData } from "../connection/conn-data.ts";
import type { HubTransport } from "./hub-transport.ts";

export type BunSocket = ServerWebSocket<ConnData>;

/**
 * The transport for `server`'s WebSockets. Made once per server: nothing is allocated per socket
 * or per delivered event.
 *
 * @example
 * const server = Bun.serve<ConnData>({ ...options, websocket: websocketHandler(ctx) });
 * hub.attach(bunTransport(server));
 */
export function bunTransport(server: Server<ConnData>): HubTransport<BunSocket> {
  return {
    // Uncompressed, as `ws.send` sends the replay: live and replayed frames go out alike, and no
    // deflate runs per publish when `perMessageDeflate` is on (BUN-NOTES).
    publish: (topic, data) => server.publish(topic, data, false),
    send: (ws, data) => {
      ws.send(data);
    },
    subscribe: (ws, topic) => ws.subscribe(topic),
    unsubscribe: (ws, topic) => ws.unsubscribe(topic),
    isClosed: (ws) => ws.data.closed,
  };
}
