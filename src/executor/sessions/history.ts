import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../util/write-atomic.ts";
import type { SessionInfo } from "../api-types.ts";

/** The most records kept, whatever the retention: a node running batch jobs in a loop must not grow without bound. */
const maxRecords = 5000;

/**
 * Finished sessions, remembered in `<stateDir>/history.jsonl` for `list --all` and `describe` after they end (and after
 * an executor restart). One JSON line is appended per finished session, so a session's end costs the same however
 * long the history is; the file is compacted (old and surplus records dropped, atomically) when it has grown to
 * twice what it holds.
 */
export class SessionHistory {
  private records: SessionInfo[] = [];
  private linesInFile = 0;
  readonly path: string;

  constructor(
    stateDir: string,
    private readonly retentionSeconds: number,
    private readonly log: (line: string) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.path = join(stateDir, "history.jsonl");
    if (!existsSync(this.path)) return;
    let text = "";
    try {
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      this.log(`ignoring unreadable session history ${this.path}: ${(err as Error).message}`);
    }
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      this.linesInFile++;
      try {
        this.records.push(JSON.parse(line) as SessionInfo);
      } catch {
        // A line cut short by a crash mid-append: skip it; the next compaction drops it.
      }
    }
    this.prune();
    if (this.linesInFile !== this.records.length) this.compact();
  }

  private prune(): void {
    const cutoff = this.now() - this.retentionSeconds * 1000;
    const kept = this.records.filter((r) => Date.parse(r.finishedAt ?? r.createdAt) >= cutoff);
    this.records = kept.slice(-maxRecords);
  }

  private compact(): void {
    try {
      writeFileAtomic(this.path, this.records.map((r) => `${JSON.stringify(r)}\n`).join(""), 0o600);
      this.linesInFile = this.records.length;
    } catch (err) {
      this.log(`cannot write session history ${this.path}: ${(err as Error).message}`);
    }
  }

  add(info: SessionInfo): void {
    if (this.records.some((r) => r.id === info.id)) return;
    const record: SessionInfo = { ...info, status: "exited", queuePosition: null };
    this.records.push(record);
    this.prune();
    try {
      appendFileSync(this.path, `${JSON.stringify(record)}\n`, { mode: 0o600 });
      this.linesInFile++;
    } catch (err) {
      this.log(`cannot write session history ${this.path}: ${(err as Error).message}`);
    }
    if (this.linesInFile > 2 * this.records.length + 100) this.compact();
  }

  all(): SessionInfo[] {
    return this.records;
  }
}
