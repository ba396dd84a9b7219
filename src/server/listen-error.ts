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
   * Wraps what `Bun.serve` threw for `host:port`; `where` names the settings of each, and the
   * line names the one at fault (the port when it is taken, else both).
   *
   * @example
   * try { Bun.serve({ hostname, port, fetch }) } catch (error) { throw ListenError.of({ host, port, hostSetting: "server.host, env HOST", portSetting: "server.port, env PORT" }, error) }
   */
  static of(where: ListenAddress, error: unknown): ListenError {
    const { host, port, hostSetting, portSetting } = where;
    const raw = (error as { code?: unknown } | null)?.code;
    const code = typeof raw === "string" ? raw : undefined;
    const [why, setting] =
      code === "EADDRINUSE"
        ? ["the port is already in use", portSetting]
        : code === "EACCES"
          ? ["permission denied (ports below 1024 need privileges)", portSetting]
          : code === "EADDRNOTAVAIL"
            ? ["this host has no such address", hostSetting]
            : [error instanceof Error ? error.message : String(error), `${hostSetting}; ${portSetting}`];
    return new ListenError(host, port, code, `cannot listen on ${host}:${port} (${setting}): ${why}`, { cause: error });
  }
}

/** Where the listener binds, and where each half is configured (for the error line). */
export interface ListenAddress {
  host: string;
  port: number;
  hostSetting: string;
  portSetting: string;
}

/**
 * Runs `open` (the `Bun.serve` call) and turns a failure into a {@linkcode ListenError} after
 * `onFail` (release what startup already holds, e.g. the store).
 *
 * @example
 * server = openListener({ host, port, hostSetting: "server.host, env HOST", portSetting: "server.port, env PORT", onFail: () => engine.close() }, () => Bun.serve({ ... }));
 */
export function openListener<T>(where: ListenAddress & { onFail?: () => Promise<void> | void }, open: () => T): T {
  try {
    return open();
  } catch (error) {
    void Promise.resolve()
      .then(where.onFail)
      .catch(() => {});
    throw ListenError.of(where, error);
  }
}
