/**
 * One expiry rule (issue #14 item 9): the verifier (upgrade, `/v1/ws/check`) and the connection
 * sweep (4401) both apply `tokenExpired`, so a token past `exp` but inside the clock tolerance is
 * welcomed and then kept until the tolerance runs out, never closed a second later.
 */
import { describe, expect, test } from "bun:test";
import type { ServerWebSocket } from "bun";
import { SignJWT } from "jose";
import { createTokenVerifier, TokenError, tokenExpired } from "../../src/auth/tokens.ts";
import { newConnData, type ConnData } from "../../src/connection/conn-data.ts";
import { ConnectionManager, type SweepOptions } from "../../src/connection/manager.ts";
import { CloseCode } from "../../src/protocol/codes.ts";

const SECRET = "token-expiry-test-secret-0123456789";
const TOLERANCE_S = 5;
const EXP_S = 1_700_000_000;

function sign(exp: number): Promise<string> {
  return new SignJWT({ sub: "u1" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime(exp).sign(new TextEncoder().encode(SECRET));
}

/** Whether the verifier lets the token in at `nowMs`. */
async function accepted(token: string, nowMs: number): Promise<boolean> {
  const verify = createTokenVerifier({ jwtSecret: SECRET, clockToleranceS: TOLERANCE_S, now: () => nowMs });
  try {
    await verify(token);
    return true;
  } catch (error) {
    expect(error).toBeInstanceOf(TokenError);
    expect((error as TokenError).reason).toBe("expired");
    return false;
  }
}

/** Whether the sweep at `nowMs` closes a connection holding a token that expires at EXP_S with 4401. */
function sweptAt(nowMs: number): boolean {
  const manager = new ConnectionManager();
  const data = newConnData({ user: "u1", tier: "starter", channels: new Set(), exp: EXP_S, tierFromToken: false }, "s1", null, nowMs, 10);
  const closes: number[] = [];
  const ws = { data, ping: () => 1, getBufferedAmount: () => 0, close: (code: number) => void closes.push(code) };
  manager.add(ws as unknown as ServerWebSocket<ConnData>);
  const options: SweepOptions = { heartbeatMs: 15_000, confirmTimeoutMs: 5_000, probeTimeoutMs: 5_000, slowConsumerBytes: 1 << 20, clockToleranceS: TOLERANCE_S };
  manager.sweep(nowMs, options, { oldestUnacked: () => null });
  expect(closes.every((code) => code === CloseCode.TokenExpired)).toBe(true);
  return closes.length > 0;
}

describe("token expiry: one rule for the upgrade and the sweep", () => {
  test("tokenExpired: not yet 1 ms before exp + tolerance, expired at it", () => {
    const limitMs = (EXP_S + TOLERANCE_S) * 1000;
    expect([tokenExpired(EXP_S, limitMs - 1, TOLERANCE_S), tokenExpired(EXP_S, limitMs, TOLERANCE_S)]).toEqual([false, true]);
    expect(tokenExpired(EXP_S, EXP_S * 1000, 0)).toBe(true);
  });

  test("a token 3 s past exp is accepted and not closed by the sweep; both refuse from exp + tolerance", async () => {
    const token = await sign(EXP_S);
    const cases = [EXP_S * 1000 - 1, EXP_S * 1000 + 3_000, EXP_S * 1000 + 3_999, (EXP_S + TOLERANCE_S) * 1000 - 1, (EXP_S + TOLERANCE_S) * 1000, (EXP_S + 60) * 1000];
    const outcomes = [];
    for (const t of cases) outcomes.push({ t: t - EXP_S * 1000, accepted: await accepted(token, t), swept: sweptAt(t) });
    expect(outcomes).toEqual([
      { t: -1, accepted: true, swept: false },
      { t: 3_000, accepted: true, swept: false },
      { t: 3_999, accepted: true, swept: false },
      { t: TOLERANCE_S * 1000 - 1, accepted: true, swept: false },
      { t: TOLERANCE_S * 1000, accepted: false, swept: true },
      { t: 60_000, accepted: false, swept: true },
    ]);
  });
});
