import { createHash } from "node:crypto";
import { parseToken } from "./tokens.ts";

/**
 * Failed token attempts, limited. A token's secret has 256 random bits, so guessing one is hopeless; what is limited
 * is the load and the noise of trying, and what is logged is that someone tries. Failures are counted per source
 * address and per token id (the public `bkr_<id>` part of a well-formed token) in a fixed window from the first
 * failure; once either reaches its limit, tokens from that address (or with that id) are refused before anything is
 * looked up (429, Retry-After) until the window ends, and one log line says so.
 *
 * Users share addresses (a login node, a NAT): a token that authenticated within `rememberGoodMs` is still let
 * through from a refused address, so one user spraying bad tokens does not lock out the others. Only the token's
 * hash is kept for that, never the token; neither a token nor its secret is ever logged.
 */
export interface AttemptLimits {
  /** Failures one source address may have in a window. */
  perAddress: number;
  /** Failures one token id may have in a window, from any address. */
  perToken: number;
  windowMs: number;
  /** How long a token that worked is let through a refused address. */
  rememberGoodMs: number;
}

export const attemptLimits: AttemptLimits = { perAddress: 20, perToken: 5, windowMs: 60_000, rememberGoodMs: 10 * 60_000 };

/** The most addresses, ids and good tokens remembered: the oldest go first, so a flood cannot grow the server. */
const maxEntries = 10_000;

interface Window {
  first: number;
  failures: number;
}

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  if (map.size >= maxEntries) map.delete(map.keys().next().value!);
  map.set(key, value);
}

const digest = (token: string) => createHash("sha256").update(token).digest("hex");

export class TokenAttempts {
  private windows = new Map<string, Window>();
  private good = new Map<string, number>();

  constructor(
    private readonly limits: AttemptLimits,
    private readonly now: () => number,
    private readonly log: (line: string) => void,
  ) {}

  private keys(address: string, token: string): Array<{ key: string; limit: number }> {
    const id = parseToken(token)?.id;
    const keys = [{ key: `address ${address}`, limit: this.limits.perAddress }];
    if (id) keys.push({ key: `token ${id}`, limit: this.limits.perToken });
    return keys;
  }

  /** A window still open, or null (an expired one is dropped). */
  private open(key: string): Window | null {
    const w = this.windows.get(key);
    if (w && this.now() - w.first < this.limits.windowMs) return w;
    if (w) this.windows.delete(key);
    return null;
  }

  /** Before a token is looked up: null to go on, or the seconds until this address (or token id) may try again. */
  refusal(address: string, token: string): number | null {
    const goodUntil = this.good.get(digest(token));
    if (goodUntil !== undefined && goodUntil > this.now()) return null;
    let wait = 0;
    for (const { key, limit } of this.keys(address, token)) {
      const w = this.open(key);
      if (w && w.failures >= limit) wait = Math.max(wait, Math.ceil((w.first + this.limits.windowMs - this.now()) / 1000));
    }
    return wait > 0 ? wait : null;
  }

  /** A token that did not authenticate. */
  failed(address: string, token: string): void {
    for (const { key, limit } of this.keys(address, token)) {
      const w = this.open(key) ?? { first: this.now(), failures: 0 };
      w.failures++;
      remember(this.windows, key, w);
      if (w.failures !== limit) continue;
      const seconds = this.limits.windowMs / 1000;
      const [kind, name] = key.split(" ") as [string, string];
      this.log(
        kind === "address"
          ? `too many failed token attempts from ${name} (${limit} in ${seconds} s): its tokens are refused for ${seconds} s`
          : `too many failed attempts with token id ${name} (${limit} in ${seconds} s): it is refused for ${seconds} s`,
      );
    }
  }

  /** A token that authenticated: let through a refused address for a while. */
  succeeded(token: string): void {
    remember(this.good, digest(token), this.now() + this.limits.rememberGoodMs);
  }
}
