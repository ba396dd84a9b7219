/**
 * What the load side needs to know about a server under test: its kind and base URL. Paths and auth
 * differ per kind; everything else (frames, scenarios) is shared so the three measure the same thing.
 */
export type TargetKind = "courier" | "bare" | "socketio";

export interface TargetInfo {
  kind: TargetKind;
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** Where publishes go when not `base` (cluster runs: publish on node A, subscribe on node B). */
  publishBase?: string;
}

export const TARGET_LABELS: Record<TargetKind, string> = {
  courier: "Courier",
  bare: "bare Bun",
  socketio: "Socket.IO",
};

/** Courier's test config (config/test.json): the API key and the HS256 secret for user tokens. */
export const COURIER_TEST_API_KEY = "test-api-key-0123456789abcdef";
export const COURIER_TEST_JWT_SECRET = "test-only-secret-0123456789abcdef";

export function publishPath(kind: TargetKind, batch: boolean): string {
  const prefix = kind === "courier" ? "/v1/publish" : "/publish";
  return batch ? `${prefix}/batch` : prefix;
}
