/**
 * Test doubles for `@courier/server`: a fetch that records requests and answers from a script,
 * and a clock whose sleeps resolve only when the test moves time. Not a test file itself.
 */
import type { Clock, FetchLike } from "../src/index.ts";

export interface Recorded {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: any;
}

type Answer = Response | Error | ((request: Recorded) => Response | Error | Promise<Response | Error>);

/** Answers requests in order from `answers`; past its end, 200 `{}`. */
export function scriptedFetch(answers: Answer[] = []) {
  const requests: Recorded[] = [];
  const fetch: FetchLike = async (url, init) => {
    const request = { method: init.method, url: new URL(url), headers: init.headers, body: init.body === undefined ? undefined : JSON.parse(init.body) };
    requests.push(request);
    let answer = answers.shift() ?? Response.json({});
    if (typeof answer === "function") answer = await answer(request);
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { fetch, requests };
}

export function courierError(status: number, error: string, retryAfterS?: number): Response {
  const headers: Record<string, string> = retryAfterS === undefined ? {} : { "retry-after": String(retryAfterS) };
  return Response.json({ error, message: `${error} (test)` }, { status, headers });
}

export function timeoutError(): Error {
  return new DOMException("The operation timed out.", "TimeoutError");
}

/** A clock that stands still until `advance`; `sleeps` lists every requested delay. */
export class FakeClock implements Clock {
  #t = 1_000_000;
  readonly sleeps: number[] = [];
  #timers: { at: number; resolve: () => void }[] = [];

  now = (): number => this.#t;
  sleep = (ms: number): Promise<void> => {
    this.sleeps.push(ms);
    return new Promise((resolve) => this.#timers.push({ at: this.#t + ms, resolve }));
  };
  /** Moves time and wakes the sleeps that are due, then lets their continuations run. */
  async advance(ms: number): Promise<void> {
    this.#t += ms;
    const due = this.#timers.filter((t) => t.at <= this.#t);
    this.#timers = this.#timers.filter((t) => t.at > this.#t);
    for (const t of due) t.resolve();
    await settle();
  }
}

/** Lets every pending promise continuation run (one macrotask turn), without waiting for time. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
