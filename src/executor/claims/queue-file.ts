/**
 * The queue's order written down (`<stateDir>/queue.json`, 0600) so that it outlives the executor: whatever the
 * claim state machine's `placesOf` says, rewritten atomically whenever it changes, and read once at start-up.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../util/write-atomic.ts";
import { errorMessage } from "../../errors.ts";
import type { Place } from "./claims.ts";

export interface PlaceStore {
  load(): Place[];
  save(places: Place[]): void;
}

/** Entries that are not places of this executor's making are dropped: the file is root's, but never trusted blindly. */
export function parsePlaces(text: string): Place[] {
  const raw = (JSON.parse(text) as { places?: unknown }).places;
  if (!Array.isArray(raw)) return [];
  return raw.filter(
    (p): p is Place =>
      typeof p === "object" &&
      p !== null &&
      /^[0-9a-f]{12}$/.test(String(p.sessionId)) &&
      Number.isInteger(p.uid) &&
      p.uid >= 0 &&
      Number.isInteger(p.count) &&
      p.count > 0 &&
      p.count <= 1024,
  ).map((p) => ({ sessionId: p.sessionId, uid: p.uid, count: p.count }));
}

/** Writes the places down whenever they change, until frozen (the executor is stopping: they stay as they are). */
export class PlaceWriter {
  private saved = "[]";
  private frozen = false;

  constructor(private readonly store: PlaceStore) {}

  write(places: Place[]): void {
    const text = JSON.stringify(places);
    if (this.frozen || text === this.saved) return;
    this.saved = text;
    this.store.save(places);
  }

  freeze(places: Place[]): void {
    this.write(places);
    this.frozen = true;
  }
}

export function queueFile(stateDir: string, log: (line: string) => void): PlaceStore {
  const path = join(stateDir, "queue.json");
  return {
    load() {
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch {
        return [];
      }
      try {
        return parsePlaces(text);
      } catch (err) {
        log(`cannot read the queue kept in ${path} (${errorMessage(err)}); starting with an empty queue`);
        return [];
      }
    },
    save(places) {
      try {
        writeFileAtomic(path, `${JSON.stringify({ places })}\n`, 0o600);
      } catch (err) {
        log(`cannot write ${path}: ${errorMessage(err)}; the queue would not outlive a restart`);
      }
    },
  };
}
