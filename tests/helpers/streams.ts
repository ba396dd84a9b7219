/**
 * Calls the agent stream routes (PROTOCOL §8) of a running Courier, and rebuilds a stream's text
 * from frames as a client must: a snapshot replaces the text, an append adds to it.
 */
import { API_KEY } from "./server.ts";
import type { Frame } from "./client.ts";

export interface StreamApi {
  start(body: Record<string, unknown>): Promise<{ channel: string; stream: string; offset: number; epoch: string }>;
  append(channel: string, stream: string, text: string | string[]): Promise<{ offset: number }>;
  end(channel: string, stream: string, status?: string, data?: unknown): Promise<{ offset: number }>;
  /** The raw answer, for error cases. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
}

export function streamApi(http: string, apiKey = API_KEY): StreamApi {
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${http}${path}`, { method: "POST", headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  const ok = async (res: Response, status: number) => {
    if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${await res.text()}`);
    return res.json();
  };
  return {
    post,
    start: async (body) => ok(await post("/v1/streams", body), 201),
    append: async (channel, stream, text) => ok(await post("/v1/streams/append", typeof text === "string" ? { channel, stream, text } : { channel, stream, texts: text }), 200),
    end: async (channel, stream, status = "complete", data) => ok(await post("/v1/streams/end", { channel, stream, status, data }), 200),
  };
}

/** The text of `stream` as a client rebuilds it from `frames` (in arrival order). */
export function rebuiltText(frames: readonly Frame[], stream: string): string {
  let text = "";
  for (const f of frames) {
    if (f.type !== "event" || f.stream !== stream) continue;
    if (f.event === "stream.snapshot") text = f.text;
    else if (f.event === "stream.append") text += f.text;
    else if (typeof f.text === "string" && f.event !== "stream.end") text = f.text;
  }
  return text;
}

/** Stream frames of one stream, as `[event, offset, text?]`. */
export function streamFrames(frames: readonly Frame[], stream: string): Array<[string, number, string?]> {
  return frames.filter((f) => f.type === "event" && f.stream === stream).map((f) => (f.text === undefined ? [f.event, f.offset] : [f.event, f.offset, f.text]));
}
