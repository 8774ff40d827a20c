import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { withFileLock } from "../config/lock.ts";
import { writeFileAtomic } from "../config/yaml-file.ts";
import type { Credential } from "./protocol.ts";

interface Entry {
  protocol: string;
  host: string;
  username: string;
  password: string;
}

/**
 * Beaker's own git credential store: `~/.beaker/git-credentials`, JSON, 0600, written atomically under a lock. Entries
 * are scoped to protocol + host; it answers only for hosts it holds.
 */
export class BeakerCredentialStore {
  constructor(readonly path: string) {}

  private read(): Entry[] {
    if (!existsSync(this.path)) return [];
    try {
      const parsed = JSON.parse(readFileSync(this.path, "utf8")) as { credentials?: Entry[] };
      return Array.isArray(parsed.credentials) ? parsed.credentials : [];
    } catch {
      return [];
    }
  }

  private async update(mutate: (entries: Entry[]) => Entry[]): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    await withFileLock(`${this.path}.lock`, () => {
      writeFileAtomic(this.path, `${JSON.stringify({ credentials: mutate(this.read()) }, null, 2)}\n`, 0o600);
    });
  }

  get(query: Credential): Entry | null {
    if (!query.host) return null;
    return (
      this.read().find(
        (e) => e.host === query.host!.toLowerCase() && e.protocol === (query.protocol ?? "https") && (!query.username || e.username === query.username),
      ) ?? null
    );
  }

  async store(c: Credential): Promise<void> {
    if (!c.host || !c.password) return;
    const entry = { protocol: c.protocol ?? "https", host: c.host.toLowerCase(), username: c.username ?? "x-access-token", password: c.password };
    await this.update((entries) => [...entries.filter((e) => !(e.host === entry.host && e.protocol === entry.protocol)), entry]);
  }

  /** Removes what matches; returns how many went. */
  async erase(c: Credential): Promise<number> {
    if (!c.host) return 0;
    let removed = 0;
    await this.update((entries) =>
      entries.filter((e) => {
        const match = e.host === c.host!.toLowerCase() && e.protocol === (c.protocol ?? "https");
        if (match) removed++;
        return !match;
      }),
    );
    return removed;
  }

  hosts(): Array<{ protocol: string; host: string; username: string; password: string }> {
    return this.read();
  }
}
