/**
 * The listener could not be opened (port in use, a privileged port, an address this host does not
 * have): startup exits 1 with this error's one line, naming the address and where it is configured
 * (PROTOCOL §1 v1.1), instead of an "uncaught exception" and exit 0.
 */
export class ListenError extends Error {
  override readonly name = "ListenError";
  readonly host: string;
  readonly port: number;
  /** The system error code (`EADDRINUSE`, `EACCES`, `EADDRNOTAVAIL`, …), when there was one. */
  readonly code: string | undefined;

  constructor(host: string, port: number, code: string | undefined, message: string, options?: ErrorOptions) {
    super(message, options);
    this.host = host;
    this.port = port;
    this.code = code;
  }

  /**
   * Wraps what `Bun.serve` threw for `host:port`, whose settings are named by `setting`
   * (e.g. `"server.port, env PORT"`).
   *
   * @example
   * try { Bun.serve({ hostname, port, fetch }) } catch (error) { throw ListenError.of(hostname, port, "server.port, env PORT", error) }
   */
  static of(host: string, port: number, setting: string, error: unknown): ListenError {
    const code = (error as { code?: unknown } | null)?.code;
    const known = typeof code === "string" ? code : undefined;
    const why =
      known === "EADDRINUSE"
        ? "the port is already in use"
        : known === "EACCES"
          ? "permission denied (ports below 1024 need privileges)"
          : known === "EADDRNOTAVAIL"
            ? "this host has no such address"
            : error instanceof Error
              ? error.message
              : String(error);
    return new ListenError(host, port, known, `cannot listen on ${host}:${port} (${setting}): ${why}`, { cause: error });
  }
}

/**
 * Runs `open` (the `Bun.serve` call) and turns a failure into a {@linkcode ListenError} after
 * `onFail` (release what startup already holds, e.g. the store).
 *
 * @example
 * server = openListener({ host, port, setting: "server.port, env PORT", onFail: () => engine.close() }, () => Bun.serve({ ... }));
 */
export function openListener<T>(where: { host: string; port: number; setting: string; onFail?: () => Promise<void> | void }, open: () => T): T {
  try {
    return open();
  } catch (error) {
    void Promise.resolve()
      .then(where.onFail)
      .catch(() => {});
    throw ListenError.of(where.host, where.port, where.setting, error);
  }
}
