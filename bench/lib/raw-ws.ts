/**
 * A minimal WebSocket client over Bun.connect, for the load side only. The browser-style WebSocket
 * costs an event object per message and one callback per frame; at a million deliveries per run that
 * made the load generator, not the server, the bottleneck. This one parses every frame of a TCP read
 * in one loop. It speaks just enough RFC 6455 for a bench: text frames, ping/pong, close; the mask key
 * is zero (allowed by the RFC, and it makes masking a no-op).
 */
import type { Socket } from "bun";

export interface RawWsHandlers {
  onText: (text: string) => void;
  onClose: (code: number, reason?: string) => void;
}

interface State {
  ws: RawWs;
  handshake: boolean;
  buffered: Buffer | undefined;
}

const EMPTY_MASK = Buffer.from([0, 0, 0, 0]);

function frame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const out = Buffer.allocUnsafe(header + 4 + length);
  out[0] = 0x80 | opcode;
  if (length < 126) {
    out[1] = 0x80 | length;
  } else if (length < 65_536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(length, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(length), 2);
  }
  EMPTY_MASK.copy(out, header);
  payload.copy(out, header + 4);
  return out;
}

export class RawWs {
  readonly opened: Promise<void>;
  #socket: Socket<State> | undefined;
  #handlers: RawWsHandlers;
  #open = Promise.withResolvers<void>();
  #closed = false;
  #fragments: Buffer[] = [];

  constructor(url: string, handlers: RawWsHandlers) {
    this.#handlers = handlers;
    this.opened = this.#open.promise;
    this.opened.catch(() => {});
    const { hostname, port, pathname, search } = new URL(url);
    const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
    const request =
      `GET ${pathname}${search} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
    const state: State = { ws: this, handshake: false, buffered: undefined };
    Bun.connect<State>({
      hostname,
      port: Number(port),
      data: state,
      socket: {
        open: (socket) => {
          this.#socket = socket;
          socket.write(request);
        },
        data: (_socket, chunk) => this.#onData(state, chunk),
        close: () => this.#finish(1006),
        error: () => this.#finish(1006),
        connectError: (_socket, error) => this.#finish(1006, error.message),
      },
    }).catch((error: Error) => this.#finish(1006, error.message));
  }

  send(text: string): void {
    this.#socket?.write(frame(0x1, Buffer.from(text)));
  }

  close(code = 1000): void {
    if (this.#closed) return;
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(code);
    this.#socket?.write(frame(0x8, payload));
    this.#socket?.end();
    this.#finish(code);
  }

  #finish(code: number, reason?: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#open.reject(new Error(reason ?? `closed ${code} before open`));
    this.#handlers.onClose(code, reason);
  }

  #onData(state: State, chunk: Buffer): void {
    let buf = state.buffered ? Buffer.concat([state.buffered, chunk]) : chunk;
    state.buffered = undefined;
    if (!state.handshake) {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) {
        state.buffered = buf;
        return;
      }
      const head = buf.toString("latin1", 0, end);
      if (!head.startsWith("HTTP/1.1 101")) {
        // A refusal before the upgrade: 401, 429, 503 …, which the caller counts.
        this.#finish(1006, `upgrade refused: ${head.split("\r\n")[0]}`);
        this.#socket?.end();
        return;
      }
      state.handshake = true;
      this.#open.resolve();
      buf = buf.subarray(end + 4);
    }
    let at = 0;
    while (buf.length - at >= 2) {
      const opcode = buf[at]! & 0x0f;
      const fin = (buf[at]! & 0x80) !== 0;
      let length = buf[at + 1]! & 0x7f;
      let header = 2;
      if (length === 126) {
        if (buf.length - at < 4) break;
        length = buf.readUInt16BE(at + 2);
        header = 4;
      } else if (length === 127) {
        if (buf.length - at < 10) break;
        length = Number(buf.readBigUInt64BE(at + 2));
        header = 10;
      }
      if (buf.length - at < header + length) break;
      const start = at + header;
      at = start + length;
      if (opcode === 0x1 && fin) {
        this.#handlers.onText(buf.toString("utf8", start, at));
      } else if (opcode === 0x1 || opcode === 0x0) {
        this.#fragments.push(Buffer.from(buf.subarray(start, at)));
        if (fin) {
          const text = Buffer.concat(this.#fragments).toString("utf8");
          this.#fragments = [];
          this.#handlers.onText(text);
        }
      } else if (opcode === 0x9) {
        this.#socket?.write(frame(0xa, Buffer.from(buf.subarray(start, at))));
      } else if (opcode === 0x8) {
        const code = length >= 2 ? buf.readUInt16BE(start) : 1005;
        this.#socket?.end();
        this.#finish(code);
        return;
      }
    }
    if (at < buf.length) state.buffered = Buffer.from(buf.subarray(at));
  }
}
