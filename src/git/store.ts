import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { withFileLock } from "../config/lock.ts";
import { writeFileAtomic } from "../util/write-atomic.ts";
import { ConfigError } from "../errors.ts";
import type { Credential } from "./protocol.ts";

/** One kept credential: protocol, host, path and username name it, as in git's own `store`; path only when git sent one. */
export interface StoredCredential {
  protocol: string;
  host: string;
  path?: string;
  username: string;
  password: string;
}

const identity = ["protocol", "host", "path", "username"] as const;

/**
 * Whether a kept credential answers a query, the way git's `store` decides (credential_match in git's credential.c):
 * every field the query names must be equal, and a field the query leaves out matches anything. An empty username is
 * a name like any other. Hosts compare without case. Pure.
 */
export function credentialMatches(query: Credential, stored: StoredCredential): boolean {
  return identity.every((field) => {
    const want = query[field];
    if (want === undefined) return true;
    const have = stored[field];
    return have !== undefined && (field === "host" ? have === want.toLowerCase() : have === want);
  });
}

/** The credential git approved, ready to keep; null when git's `store` would refuse it (no protocol, host, user or password). */
export function credentialToKeep(c: Credential): StoredCredential | null {
  if (c.protocol === undefined || (c.host === undefined && c.path === undefined) || c.username === undefined || c.password === undefined) return null;
  return { protocol: c.protocol, host: (c.host ?? "").toLowerCase(), ...(c.path === undefined ? {} : { path: c.path }), username: c.username, password: c.password };
}

/**
 * Beaker's own git credential store: `~/.beaker/git-credentials`, JSON, 0600, written atomically under a lock. Like git's
 * `store` it keeps one credential per (protocol, host, path, username), newest first, answers a query with the newest
 * that matches, and erases every one that matches. Files from before version 2 (one credential per protocol and host,
 * no path) read as they are.
 */
export class BeakerCredentialStore {
  constructor(readonly path: string) {}

  private read(): StoredCredential[] {
    if (!existsSync(this.path)) return [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.path, "utf8"));
    } catch (err) {
      throw new ConfigError(`cannot read ${this.path}: ${(err as Error).message}; fix or remove it, then run 'beaker git setup' again`);
    }
    const list = (parsed as { credentials?: unknown } | null)?.credentials;
    const valid = (e: unknown): e is StoredCredential => {
      const entry = e as Record<string, unknown> | null;
      return (
        typeof entry === "object" &&
        entry !== null &&
        ["protocol", "host", "username", "password"].every((k) => typeof entry[k] === "string") &&
        (entry.path === undefined || typeof entry.path === "string")
      );
    };
    if (!Array.isArray(list) || !list.every(valid)) throw new ConfigError(`${this.path} is not a Beaker git credential file; fix or remove it, then run 'beaker git setup' again`);
    return list;
  }

  private async update<T>(mutate: (entries: StoredCredential[]) => { entries: StoredCredential[]; result: T }): Promise<T> {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    return withFileLock(`${this.path}.lock`, () => {
      const { entries, result } = mutate(this.read());
      writeFileAtomic(this.path, `${JSON.stringify({ version: 2, credentials: entries }, null, 2)}\n`, 0o600);
      return result;
    });
  }

  get(query: Credential): StoredCredential | null {
    return this.read().find((e) => credentialMatches(query, e)) ?? null;
  }

  /** Keeps what git approved in front, replacing only the credentials with its protocol, host, path and username. */
  async store(c: Credential): Promise<void> {
    const entry = credentialToKeep(c);
    if (!entry) return;
    const named: Credential = { protocol: entry.protocol, host: entry.host, username: entry.username, ...(entry.path === undefined ? {} : { path: entry.path }) };
    await this.update((entries) => ({ entries: [entry, ...entries.filter((e) => !credentialMatches(named, e))], result: undefined }));
  }

  /** Removes every credential the query matches; returns how many went. A query that names nothing erases nothing. */
  async erase(query: Credential): Promise<number> {
    if (identity.every((field) => query[field] === undefined)) return 0;
    if (!existsSync(this.path)) return 0;
    return this.update((entries) => {
      const kept = entries.filter((e) => !credentialMatches(query, e));
      return { entries: kept, result: entries.length - kept.length };
    });
  }

  hosts(): StoredCredential[] {
    return this.read();
  }
}
