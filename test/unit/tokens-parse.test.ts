/** Which strings are taken as tokens (anything else is never looked up), and the constant-time secret check. */
import { expect, test } from "bun:test";
import { hashSecret, newToken, parseToken, secretMatches } from "../../src/server/tokens.ts";

const { token, id, hash } = newToken("user");
const secret = token.slice(`bkr_${id}_`.length);

test("a token pasted with spaces or a newline around it is still the token", () => {
  expect(parseToken(`  ${token}\n`)).toEqual({ kind: "user", id, secret });
});
test.each([
  ["text before it", `x${token}`],
  ["text after it", `${token}x`],
  ["a second token after it", `${token} ${token}`],
])("a token with %s is not one", (_, text) => {
  expect(parseToken(text)).toBeNull();
});
test("a stored hash of another length (a damaged row) is no match, and no error", () => {
  expect(secretMatches(secret, hash)).toBe(true);
  expect(secretMatches(secret, hash.slice(0, 32))).toBe(false);
  expect(secretMatches(secret, "")).toBe(false);
  expect(secretMatches(`${secret}x`, hash)).toBe(false);
  expect(hashSecret(secret)).toBe(hash);
});
