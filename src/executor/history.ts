import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../config/yaml-file.ts";
import type { SessionInfo } from "./api-types.ts";

/** The most records kept, whatever the retention: a node running batch jobs in a loop must not grow without bound. */
const maxRecords = 5000;

/**
 * Finished sessions, remembered in `<stateDir>/history.json` for `list --all` and `describe` after they end (and after
 * an executor restart). Written whole and atomically on each change; small by construction.
 */
export class SessionHistory {
  private records: SessionInfo[] = [];
  readonly path: string;

  constructor(
    stateDir: string,
    private readonly retentionSeconds: number,
    private readonly log: (line: string) => void,
  ) {
    this.path = join(stateDir, "history.json");
    if (!existsSync(this.path)) return;
    try {
      const parsed = JSON.parse(readFileSync(this.path, "utf8")) as { sessions?: SessionInfo[] };
      this.records = Array.isArray(parsed.sessions) ? parsed.sessions : [];
    } catch (err) {
      this.log(`ignoring unreadable session history ${this.path}: ${(err as Error).message}`);
    }
    this.prune(Date.now());
  }

  private prune(now: number): void {
    const cutoff = now - this.retentionSeconds * 1000;
    this.records = this.records.filter((r) => Date.parse(r.finishedAt ?? r.createdAt) >= cutoff).slice(-maxRecords);
  }

  add(info: SessionInfo): void {
    if (this.records.some((r) => r.id === info.id)) return;
    this.records.push({ ...info, status: "exited", queuePosition: null });
    this.prune(Date.now());
    try {
      writeFileAtomic(this.path, `${JSON.stringify({ sessions: this.records })}\n`, 0o600);
    } catch (err) {
      this.log(`cannot write session history ${this.path}: ${(err as Error).message}`);
    }
  }

  all(): SessionInfo[] {
    return this.records;
  }
}
