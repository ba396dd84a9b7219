/**
 * The user-id grammar (PROTOCOL.md §3/§4): a token's `sub`, the name of `user:<id>`, a job's owner.
 * Written once here; the channel grammar reuses its character class.
 */

/** The characters of a user id (and of a channel's name part). */
export const USER_ID_CHARS = "A-Za-z0-9_\\-.@=";

export const USER_ID = new RegExp(`^[${USER_ID_CHARS}]{1,128}$`);

/** How the rule reads in an error message. */
export const USER_ID_RULE = "1–128 of A-Z a-z 0-9 _ - . @ =";

/**
 * Whether `value` is a valid user id.
 *
 * @example
 * isUserId("alice@example.com") // true
 * isUserId("a b") // false
 */
export function isUserId(value: unknown): value is string {
  return typeof value === "string" && USER_ID.test(value);
}
