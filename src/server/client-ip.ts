/**
 * The client's IP address behind proxies. `X-Forwarded-For` is trusted only when the socket peer is a
 * configured proxy (`server.trustedProxies`), and then read right to left: each proxy appends the
 * address it saw, so the rightmost entry not itself a trusted proxy is the client. Entries further
 * left are whatever the client wrote and are never believed.
 */

/** True when `ip` is one of the trusted proxies. */
export type TrustedProxies = (ip: string) => boolean;

interface Cidr {
  bytes: Uint8Array;
  bits: number;
}

/**
 * Parses an IPv4 or IPv6 address into 4 or 16 bytes; IPv4-mapped IPv6 (`::ffff:10.0.0.1`, as Bun
 * reports IPv4 peers on a dual-stack socket) becomes its 4 IPv4 bytes. `undefined` when not an address.
 */
export function parseIp(text: string): Uint8Array | undefined {
  const ip = text.trim();
  if (ip.includes(":")) return parseIpv6(ip);
  return parseIpv4(ip);
}

function parseIpv4(ip: string): Uint8Array | undefined {
  const parts = ip.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    bytes[i] = Number(part);
  }
  return bytes;
}

function parseIpv6(text: string): Uint8Array | undefined {
  const ip = text.replace(/%[\w.-]+$/, ""); // zone id: fe80::1%eth0
  const halves = ip.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string) => (half === "" ? [] : half.split(":"));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  // A trailing dotted quad stands for the last two groups.
  const last = (tail.length > 0 ? tail : head).at(-1);
  let v4: Uint8Array | undefined;
  if (last?.includes(".")) {
    v4 = parseIpv4(last);
    if (!v4) return undefined;
    (tail.length > 0 ? tail : head).pop();
  }
  const wanted = v4 ? 6 : 8;
  const missing = wanted - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...Array<string>(missing).fill("0"), ...tail];
  const bytes = new Uint8Array(16);
  for (const [i, group] of all.entries()) {
    if (!/^[0-9a-f]{1,4}$/i.test(group)) return undefined;
    const value = parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  }
  if (v4) bytes.set(v4, 12);
  const mapped = bytes.subarray(0, 12).every((b, i) => (i < 10 ? b === 0 : b === 0xff));
  return mapped ? bytes.slice(12) : bytes;
}

function parseCidr(text: string): Cidr | undefined {
  const [address, prefix, extra] = text.trim().split("/");
  if (extra !== undefined || address === undefined) return undefined;
  const bytes = parseIp(address);
  if (!bytes) return undefined;
  const max = bytes.length * 8;
  if (prefix === undefined) return { bytes, bits: max };
  if (!/^\d{1,3}$/.test(prefix)) return undefined;
  // `::ffff:10.0.0.0/104` was parsed to IPv4 bytes: its prefix counts the 96 mapped bits too.
  const bits = Number(prefix) - (address.includes(":") && bytes.length === 4 ? 96 : 0);
  return bits >= 0 && bits <= max ? { bytes, bits } : undefined;
}

/** True for an IP address or a CIDR range (`10.0.0.0/8`, `fd00::/8`): the entries of `server.trustedProxies`. */
export function isIpOrCidr(text: string): boolean {
  return parseCidr(text) !== undefined;
}

function contains(range: Cidr, ip: Uint8Array): boolean {
  if (range.bytes.length !== ip.length) return false;
  const whole = range.bits >> 3;
  for (let i = 0; i < whole; i++) if (range.bytes[i] !== ip[i]) return false;
  const rest = range.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (range.bytes[whole]! & mask) === (ip[whole]! & mask);
}

/**
 * Compiles the trusted proxy list once (at startup); a bad entry is a `RangeError`.
 *
 * @example
 * const trusted = trustedProxies(["10.0.0.0/8", "::1"]);
 * trusted("10.1.2.3"); // true
 */
export function trustedProxies(list: readonly string[]): TrustedProxies {
  const ranges = list.map((entry) => {
    const range = parseCidr(entry);
    if (!range) throw new RangeError(`Invalid trusted proxy ${JSON.stringify(entry)}: expected an IP address or CIDR`);
    return range;
  });
  if (ranges.length === 0) return () => false;
  return (ip) => {
    const bytes = parseIp(ip);
    return bytes !== undefined && ranges.some((range) => contains(range, bytes));
  };
}

/** An `X-Forwarded-For` entry without a port (`1.2.3.4:5678`, `[::1]:80`), as some proxies write it. */
function withoutPort(entry: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(entry);
  if (bracketed) return bracketed[1]!;
  return /^[\d.]+:\d+$/.test(entry) ? entry.slice(0, entry.lastIndexOf(":")) : entry;
}

/**
 * The address to rate-limit and log for `req`: `socketAddress` unless that peer is a trusted proxy,
 * in which case the rightmost `X-Forwarded-For` hop that is not a trusted proxy. An unparsable hop
 * ends the walk at the last good address.
 *
 * @example
 * const trusted = trustedProxies(config.server.trustedProxies);
 * const ip = clientIp(req, server.requestIP(req)?.address ?? "", trusted);
 */
export function clientIp(req: Request, socketAddress: string, trusted: TrustedProxies): string {
  let ip = socketAddress;
  if (!trusted(ip)) return ip;
  const hops = (req.headers.get("x-forwarded-for") ?? "").split(",").map((hop) => withoutPort(hop.trim()));
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (hop === "" || parseIp(hop) === undefined) return ip;
    ip = hop;
    if (!trusted(ip)) return ip;
  }
  return ip;
}
