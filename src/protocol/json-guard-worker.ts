/**
 * The JSON guard's worker: runs {@linkcode parsePublishSync} off the main thread, one request at a
 * time. It holds no state, so the main thread may terminate it mid-parse and start another.
 *
 * @example
 * // Started by createJsonGuard(), never imported directly:
 * new Worker(new URL("./json-guard-worker.ts", import.meta.url));
 */
import { JsonGuardError, parsePublishSync, type GuardRequest, type GuardResponse } from "./json-guard.ts";

declare var self: Worker;

self.onmessage = (event: MessageEvent<GuardRequest>) => {
  const { id, text, maxDepth, maxItems } = event.data;
  let response: GuardResponse;
  try {
    response = { id, ok: true, value: parsePublishSync(text, maxDepth, maxItems) };
  } catch (error) {
    response =
      error instanceof JsonGuardError
        ? { id, ok: false, code: error.code, message: error.message }
        : { id, ok: false, code: "internal", message: error instanceof Error ? error.message : String(error) };
  }
  self.postMessage(response);
};
