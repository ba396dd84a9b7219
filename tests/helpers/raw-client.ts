/**
 * A bare WebSocket client on `node:net` for misbehaving peers: one that never answers pings, or
 * one that stops reading (`pause()`), so the server sees a half-open or slow connection; with
 * `answerPings`, one that behaves at the frame level but keeps writing whatever it likes.
 */
import { connect as tcpConnect, type Socket } from "node:net";
import { randomBytes } from "node:crypto";

export interface RawClient {
  socket: Socket;
  /** Text frames received, parsed. */
  frames: any[];
  pings: number;
  send(frame: unknown): void;
  /** Sends a frame with any opcode (masked, as a client must). */
  sendRaw(opcode: number, payload: Uint8Array): void;
  next(match: (f: any) => boolean, timeoutMs?: number): Promise<any>;
  /** Resolves once `count` pings have arrived in all. */
  pinged(count?: number, timeoutMs?: number): Promise<void>;
  /** Close code sent by the server (or 1006 if the socket ended without one). */
  closed: Promise<number>;
  destroy(): void;
}

export interface RawConnectOptions {
  /** Answer pings with pongs, as every real client does. @default false */
  answerPings?: boolean;
}

export function rawConnect(url: string, options: RawConnectOptions = {}): Promise<RawClient> {
  const { hostname, port, pathname, search } = new URL(url);
  const socket = tcpConnect({ host: hostname, port: Number(port) });
  const frames: any[] = [];
  const waiters = new Set<() => void>();
  const closed = Promise.withResolvers<number>();
  let buffer = Buffer.alloc(0);
  let upgraded = false;
  const ready = Promise.withResolvers<RawClient>();
  const client: RawClient = {
    socket,
    frames,
    pings: 0,
    send(frame) {
      client.sendRaw(0x1, Buffer.from(typeof frame === "string" ? frame : JSON.stringify(frame)));
    },
    sendRaw(opcode, payload) {
      const mask = randomBytes(4);
      const first = 0x80 | opcode;
      const header = payload.length < 126 ? Buffer.from([first, 0x80 | payload.length]) : Buffer.from([first, 0x80 | 126, payload.length >> 8, payload.length & 255]);
      const masked = Buffer.alloc(payload.length);
      for (let i = 0; i < payload.length; i++) masked[i] = payload[i]! ^ mask[i % 4]!;
      if (!socket.destroyed) socket.write(Buffer.concat([header, mask, masked]));
    },
    next(match, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = frames.find(match);
          if (found) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(found);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`raw client: timed out; frames ${JSON.stringify(frames.slice(-3))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    pinged(count = 1, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (client.pings < count) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`raw client: ${client.pings} of ${count} pings arrived`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    closed: closed.promise,
    destroy: () => socket.destroy(),
  };
  socket.on("connect", () => {
    socket.write(
      `GET ${pathname}${search} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
  socket.on("data", (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    if (!upgraded) {
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = buffer.subarray(0, end).toString();
      buffer = buffer.subarray(end + 4);
      if (!head.startsWith("HTTP/1.1 101")) {
        ready.reject(new Error(`raw client: refused: ${head.split("\r\n")[0]}`));
        socket.destroy();
        return;
      }
      upgraded = true;
      ready.resolve(client);
    }
    for (;;) {
      if (buffer.length < 2) return;
      const opcode = buffer[0]! & 0x0f;
      let length = buffer[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffer.length < 4) return;
        length = buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (buffer.length < 10) return;
        length = Number(buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (buffer.length < offset + length) return;
      const payload = buffer.subarray(offset, offset + length);
      buffer = buffer.subarray(offset + length);
      if (opcode === 0x1) frames.push(JSON.parse(payload.toString()));
      else if (opcode === 0x9) {
        client.pings++;
        if (options.answerPings) client.sendRaw(0xa, payload); // else deliberately never answered
      }
      else if (opcode === 0x8) closed.resolve(payload.length >= 2 ? payload.readUInt16BE(0) : 1005);
      for (const w of [...waiters]) w();
    }
  });
  socket.on("close", () => closed.resolve(1006));
  socket.on("error", (error) => ready.reject(error));
  return ready.promise;
}
