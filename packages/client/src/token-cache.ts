/**
 * The token of the connection: a fixed string, or a provider's answer kept until a refusal, a
 * 4401 or a 401 says it is no longer good (then the provider is asked again).
 */
import type { TokenSource } from "./types.ts";

/**
 * @example
 * const tokens = new TokenCache(async () => (await (await fetch("/dev/token")).json()).token);
 * const token = await tokens.get();
 * tokens.keep(token);
 * tokens.forget(); // after a refusal
 */
export class TokenCache {
  #source: TokenSource;
  #token: string | undefined;

  /** @example new TokenCache("eyJ…"); */
  constructor(source: TokenSource) {
    this.#source = source;
  }

  /**
   * The kept token, else the source's: a string when one is at hand, so a dial need not wait a
   * tick. Throws what a provider throws synchronously.
   *
   * @example
   * const token = await tokens.get();
   */
  get(): string | Promise<string> {
    return this.#token ?? (typeof this.#source === "string" ? this.#source : this.#source());
  }

  /** The kept token, if any. @example tokens.kept; */
  get kept(): string | undefined {
    return this.#token;
  }

  /** Keeps `token` for later attempts and polls. @example tokens.keep(token); */
  keep(token: string): void {
    this.#token = token;
  }

  /** Drops the kept token: the next `get()` asks the provider. @example tokens.forget(); */
  forget(): void {
    this.#token = undefined;
  }
}
