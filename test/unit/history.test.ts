/** The executor's memory of finished sessions: appended a line at a time, reloaded, pruned, and compacted. */
import { afterAll, expect, test } from "bun:test";
import { appendFileSync, readFileSync, statSync } from "node:fs";
import { SessionHistory } from "../../src/executor/sessions/history.ts";
import type { SessionInfo } from "../../src/executor/api-types.ts";
import { removeDir, tempDir } from "../harness.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));
const day = 24 * 3600 * 1000;

function record(id: string, finishedAt: number): SessionInfo {
  const at = new Date(finishedAt).toISOString();
  return { id, name: id, node: "n", user: "u", account: null, uid: 1000, gpus: [], requestedGpus: 0, image: "i", status: "exited", tty: false, ports: [], mounts: [], createdAt: at, startedAt: at, finishedAt: at, queuePosition: null, exitCode: 0, reason: "exited", slurmJob: null };
}

test("survives a restart, drops what is older than the retention, skips a line cut short by a crash", () => {
  const dir = tempDir();
  dirs.push(dir);
  let now = 100 * day;
  const history = new SessionHistory(dir, 7 * 24 * 3600, () => {}, () => now);
  history.add(record("old", now - 8 * day));
  history.add(record("a", now - day));
  history.add(record("b", now));
  history.add(record("b", now));
  expect(history.all().map((r) => r.id)).toEqual(["a", "b"]);
  expect(statSync(history.path).mode & 0o777).toBe(0o600);
  appendFileSync(history.path, '{"id":"torn","na');
  const reloaded = new SessionHistory(dir, 7 * 24 * 3600, () => {}, () => now);
  expect(reloaded.all().map((r) => r.id)).toEqual(["a", "b"]);
  // The reload compacted the file: the torn line and the expired record are gone from disk too.
  expect(readFileSync(history.path, "utf8").trim().split("\n").map((l) => JSON.parse(l).id)).toEqual(["a", "b"]);
  now += 2 * day;
  expect(new SessionHistory(dir, 24 * 3600, () => {}, () => now).all()).toEqual([]);
});

test("a session's end appends one line; the file is compacted when it holds twice what is kept", () => {
  const dir = tempDir();
  dirs.push(dir);
  let now = 100 * day;
  const history = new SessionHistory(dir, 3600, () => {}, () => now);
  for (let i = 0; i < 150; i++) {
    history.add(record(`s${i}`, now));
    now += 60_000;
  }
  const lines = readFileSync(history.path, "utf8").trim().split("\n");
  // With a one-hour retention about 60 records are kept; the file never grows far past twice that.
  expect(history.all().length).toBeLessThanOrEqual(61);
  expect(lines.length).toBeLessThanOrEqual(2 * history.all().length + 101);
  expect(lines.at(-1)).toContain('"id":"s149"');
});
