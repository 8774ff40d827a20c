import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Tokens look like `bkr_<id>_<secret>`: the id (public, 10 hex) finds the row, the secret (32 random bytes, base64url)
 * is only ever stored as its SHA-256 and compared in constant time. `bkn_` marks node tokens.
 */
export type TokenKind = "user" | "node";

export interface NewToken {
  id: string;
  token: string;
  hash: string;
}

export function newToken(kind: TokenKind): NewToken {
  const id = randomBytes(5).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  return { id, token: `${kind === "user" ? "bkr" : "bkn"}_${id}_${secret}`, hash: hashSecret(secret) };
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** Splits a presented token; null when it is not one of ours (so it is never looked up). */
export function parseToken(token: string): { kind: TokenKind; id: string; secret: string } | null {
  const m = /^(bkr|bkn)_([0-9a-f]{10})_([A-Za-z0-9_-]{43})$/.exec(token.trim());
  if (!m) return null;
  return { kind: m[1] === "bkr" ? "user" : "node", id: m[2]!, secret: m[3]! };
}

export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), "hex");
  const b = Buffer.from(storedHash, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}
