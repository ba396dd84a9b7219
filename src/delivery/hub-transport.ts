/**
 * The hub's boundary to sockets, as small as the hub needs: topics for fan-out, one write to one
 * socket for a join's `subscribed` and replay, and whether a socket has closed. The real adapter is
 * `bun-transport.ts` (Bun's native topics); unit tests use a fake that records writes.
 *
 * `S` is the socket handle the transport understands; the hub never looks inside it. Members are
 * function properties, not methods, so a transport for one socket type is checked strictly
 * against the hub it is attached to.
 */
export interface HubTransport<S> {
  /**
   * Sends `data` to every socket subscribed to `topic`: the one fan-out call per event, so the
   * hub does no work per subscriber. Returns the worst outcome over the subscribers, as Bun does:
   * bytes written, -1 queued under backpressure somewhere, 0 dropped or no subscriber.
   */
  publish: (topic: string, data: string) => number;
  /** Sends `data` to one socket. */
  send: (socket: S, data: string) => void;
  subscribe: (socket: S, topic: string) => void;
  unsubscribe: (socket: S, topic: string) => void;
  /** True once the socket has closed: a join that was reading history gives up. */
  isClosed: (socket: S) => boolean;
}
