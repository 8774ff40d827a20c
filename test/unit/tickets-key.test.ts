/**
 * The queue-ticket signing key is kept only when it is a plain 32-byte file of the executor's user that no one else
 * may read; anything else is replaced (the executor runs as root, and so do these tests). And the request digest is
 * stable across executor versions: a ticket kept through an upgrade still names the same request.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { chownSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CreateSessionRequest } from "../../src/executor/api-types.ts";
import { loadTicketKey, requestDigest } from "../../src/executor/claims/tickets.ts";
import { removeDir, tempDir } from "../harness.ts";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));
const scratch = () => {
  const dir = tempDir("beaker-ticket-key-");
  dirs.push(dir);
  return dir;
};

describe("the signing key", () => {
  test.each<[string, (path: string) => void]>([
    ["shorter than 32 bytes", (path) => writeFileSync(path, Buffer.alloc(16, 1), { mode: 0o600 })],
    ["owned by another user", (path) => {
      writeFileSync(path, Buffer.alloc(32, 1), { mode: 0o600 });
      chownSync(path, process.getuid!() + 4242, process.getgid!());
    }],
  ])("a key file %s is replaced by a fresh root-only 32-byte key", (_, make) => {
    const dir = scratch();
    const path = join(dir, "queue-ticket.key");
    make(path);
    const lines: string[] = [];
    const key = loadTicketKey(dir, (line) => lines.push(line));
    expect(key.length).toBe(32);
    expect(key.equals(Buffer.alloc(32, 1))).toBe(false);
    expect(readFileSync(path).equals(key)).toBe(true);
    expect(statSync(path)).toMatchObject({ uid: process.getuid!(), size: 32 });
    expect(lines).toEqual([`${path} is not a 32-byte file only root can read; replacing it (tickets issued until now are void)`]);
  });
  test("a plain root-only 32-byte key is kept, without a word", () => {
    const dir = scratch();
    const path = join(dir, "queue-ticket.key");
    writeFileSync(path, Buffer.alloc(32, 1), { mode: 0o600 });
    const lines: string[] = [];
    expect(loadTicketKey(dir, (line) => lines.push(line)).equals(Buffer.alloc(32, 1))).toBe(true);
    expect(lines).toEqual([]);
  });
});

test("the request digest: SHA-256 of the fields but the ticket, as [key, value] pairs in key order", () => {
  const req = { tty: true, gpus: 2, image: "ubuntu", cwd: "/home/ada", ticket: "t.x", command: ["bash"] } as unknown as CreateSessionRequest;
  const pairs = [["command", ["bash"]], ["cwd", "/home/ada"], ["gpus", 2], ["image", "ubuntu"], ["tty", true]];
  expect(requestDigest(req)).toBe(createHash("sha256").update(JSON.stringify(pairs)).digest("hex"));
});
