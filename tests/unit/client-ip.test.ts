import { describe, expect, test } from "bun:test";
import { clientIp, isIpOrCidr, parseIp, trustedProxies } from "../../src/server/client-ip.ts";

const req = (xff?: string) => new Request("http://courier.test/v1/ws", { headers: xff === undefined ? {} : { "x-forwarded-for": xff } });

describe("parseIp", () => {
  test.each([
    ["10.0.0.1", [10, 0, 0, 1]],
    ["::ffff:10.0.0.1", [10, 0, 0, 1]],
    ["::ffff:a00:1", [10, 0, 0, 1]],
  ])("%s is IPv4 bytes", (text, bytes) => {
    expect([...parseIp(text)!]).toEqual(bytes);
  });

  test("IPv6 forms expand to 16 bytes", () => {
    expect([...parseIp("::1")!]).toEqual([...Array(15).fill(0), 1]);
    expect([...parseIp("2001:db8::ff00:42:8329")!]).toEqual([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0x42, 0x83, 0x29]);
    expect(parseIp("fe80::1%eth0")).toHaveLength(16);
    expect(parseIp("::")).toHaveLength(16);
  });

  test.each(["", "10.0.0", "10.0.0.256", "1.2.3.4.5", "1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", "g::1", "localhost", "1:2:3:4:5:6:7"])(
    "%p is not an address",
    (text) => {
      expect(parseIp(text)).toBeUndefined();
    },
  );
});

describe("isIpOrCidr", () => {
  test.each(["10.0.0.1", "10.0.0.0/8", "0.0.0.0/0", "::1", "fd00::/8", "::ffff:10.0.0.0/104"])("%s is accepted", (text) => {
    expect(isIpOrCidr(text)).toBe(true);
  });
  test.each(["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8/8", "10.0.0.0/x", "proxy.internal"])("%s is refused", (text) => {
    expect(isIpOrCidr(text)).toBe(false);
  });
});

describe("trustedProxies", () => {
  test("matches addresses inside each range, by family", () => {
    const trusted = trustedProxies(["10.0.0.0/8", "192.168.1.128/25", "fd00::/8", "127.0.0.1"]);
    expect(["10.255.1.1", "192.168.1.200", "fd12::1", "127.0.0.1", "::ffff:10.1.1.1"].map(trusted)).toEqual([true, true, true, true, true]);
    expect(["11.0.0.1", "192.168.1.127", "fe00::1", "127.0.0.2", "::a00:1", "nonsense"].map(trusted)).toEqual([false, false, false, false, false, false]);
  });

  test("an empty list trusts nobody", () => {
    expect(trustedProxies([])("127.0.0.1")).toBe(false);
  });

  test("a bad entry is a RangeError naming it", () => {
    expect(() => trustedProxies(["10.0.0.0/8", "10.0.0.0/40"])).toThrow(new RangeError('Invalid trusted proxy "10.0.0.0/40": expected an IP address or CIDR'));
  });
});

describe("clientIp", () => {
  const trusted = trustedProxies(["10.0.0.0/8"]);

  test("an untrusted peer is the client, whatever it forwards", () => {
    expect(clientIp(req("1.1.1.1"), "203.0.113.9", trusted)).toBe("203.0.113.9");
  });

  test("behind a trusted proxy, the rightmost untrusted hop is the client (spoofed left entries ignored)", () => {
    expect(clientIp(req("6.6.6.6, 203.0.113.9"), "10.0.0.2", trusted)).toBe("203.0.113.9");
    expect(clientIp(req("6.6.6.6, 203.0.113.9, 10.0.0.7"), "10.0.0.2", trusted)).toBe("203.0.113.9");
  });

  test("repeated X-Forwarded-For headers are read as one list", () => {
    const headers = new Headers();
    headers.append("x-forwarded-for", "6.6.6.6");
    headers.append("x-forwarded-for", "203.0.113.9");
    expect(clientIp(new Request("http://courier.test/", { headers }), "10.0.0.2", trusted)).toBe("203.0.113.9");
  });

  test("ports in hops are dropped", () => {
    expect(clientIp(req("203.0.113.9:51000"), "10.0.0.2", trusted)).toBe("203.0.113.9");
    expect(clientIp(req("[2001:db8::1]:443"), "10.0.0.2", trusted)).toBe("2001:db8::1");
  });

  test("a trusted proxy without the header, or with a garbage hop, yields the last good address", () => {
    expect(clientIp(req(), "10.0.0.2", trusted)).toBe("10.0.0.2");
    expect(clientIp(req("203.0.113.9, garbage"), "10.0.0.2", trusted)).toBe("10.0.0.2");
    expect(clientIp(req("garbage, 10.0.0.3"), "10.0.0.2", trusted)).toBe("10.0.0.3");
  });

  test("a dual-stack peer address matches its IPv4 range", () => {
    expect(clientIp(req("203.0.113.9"), "::ffff:10.0.0.2", trusted)).toBe("203.0.113.9");
  });
});
