/** HS256 user tokens for Courier, signed with the test secret the server's test config trusts. */
import { SignJWT } from "jose";
import { COURIER_TEST_JWT_SECRET } from "./target.ts";

const key = new TextEncoder().encode(process.env.COURIER_JWT_SECRET ?? COURIER_TEST_JWT_SECRET);

/** A token for `sub`, valid for an hour: longer than any bench run. */
export function signToken(sub: string, tier: "starter" | "pro" | "enterprise" = "starter"): Promise<string> {
  return new SignJWT({ tier })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(key);
}
