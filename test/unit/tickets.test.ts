/** Queue tickets (signed, bound to a user and a request) and the queue file that outlives the executor. */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ForbiddenError, UsageError } from "../../src/errors.ts";
import type { CreateSessionRequest } from "../../src/executor/api-types.ts";
import { parsePlaces, queueFile } from "../../src/executor/claims/queue-file.ts";
import { loadTicketKey, requestDigest, TicketBook } from "../../src/executor/claims/tickets.ts";
import { removeDir, tempDir } from "../harness.ts";

const request: CreateSessionRequest = {
  gpus: 2,
  image: null,
  name: null,
  cpus: null,
  memory: null,
  sharedMemory: null,
  ports: [],
  env: [],
  mounts: [],
  workdir: null,
  command: [],
  cwd: "/home/ada",
  tty: true,
  term: "xterm",
  noWait: false,
  detach: false,
};
const book = new TicketBook(new Uint8Array(32).fill(7));
const ticket = book.issue("0123456789ab", 1000, request);
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));
const scratch = () => {
  const dir = tempDir("beaker-tickets-");
  dirs.push(dir);
  return dir;
};

describe("tickets", () => {
  test("the user it was issued to, sending the same request again, gets its place", () => {
    expect(book.placeOf(1000, { ...request, ticket })).toBe("0123456789ab");
  });
  test("no ticket: no place", () => {
    expect(book.placeOf(1000, request)).toBeNull();
  });
  test("the digest does not depend on the order of the fields, and leaves the ticket out", () => {
    const reordered = Object.fromEntries(Object.entries(request).reverse()) as unknown as CreateSessionRequest;
    expect(requestDigest(reordered)).toBe(requestDigest({ ...request, ticket }));
  });

  const [payload, mac] = ticket.split(".") as [string, string];
  const otherPayload = Buffer.from(JSON.stringify({ s: "0123456789ab", u: 2000, d: requestDigest(request) })).toString("base64url");
  test.each([
    ["another user's", 2000, { ...request, ticket }, new ForbiddenError("this queue ticket was issued to another user")],
    ["for another request (more GPUs at the same place)", 1000, { ...request, gpus: 8, ticket }, new UsageError("this queue ticket was issued for another request")],
    ["rewritten for another user, old signature", 2000, { ...request, ticket: `${otherPayload}.${mac}` }, new UsageError("the queue ticket was not issued by this node's executor")],
    ["with its signature cut short", 1000, { ...request, ticket: `${payload}.${mac.slice(0, 10)}` }, new UsageError("the queue ticket was not issued by this node's executor")],
    ["signed with another node's key", 1000, { ...request, ticket: new TicketBook(new Uint8Array(32).fill(8)).issue("0123456789ab", 1000, request) }, new UsageError("the queue ticket was not issued by this node's executor")],
  ])("a ticket %s is refused", (_, uid, req, error) => {
    expect(() => book.placeOf(uid, req)).toThrow(error);
  });

  test("the key is made once, 0600, and kept", () => {
    const dir = scratch();
    const key = loadTicketKey(dir, () => {});
    expect(key.length).toBe(32);
    expect(statSync(join(dir, "queue-ticket.key")).mode & 0o777).toBe(0o600);
    expect(loadTicketKey(dir, () => {})).toEqual(key);
  });
  test("a key others could read is replaced, and the log says so", () => {
    const dir = scratch();
    const key = loadTicketKey(dir, () => {});
    chmodSync(join(dir, "queue-ticket.key"), 0o644);
    const lines: string[] = [];
    const fresh = loadTicketKey(dir, (line) => lines.push(line));
    expect(fresh).not.toEqual(key);
    expect(lines.join()).toContain("replacing it");
    expect(statSync(join(dir, "queue-ticket.key")).mode & 0o777).toBe(0o600);
  });
});

describe("the queue file", () => {
  test("written and read back in order; 0600", () => {
    const dir = scratch();
    const store = queueFile(dir, () => {});
    const places = [
      { sessionId: "0123456789ab", uid: 1000, count: 2 },
      { sessionId: "ba9876543210", uid: 1001, count: 1 },
    ];
    store.save(places);
    expect(store.load()).toEqual(places);
    expect(statSync(join(dir, "queue.json")).mode & 0o777).toBe(0o600);
  });
  test("no file: an empty queue; a broken one: an empty queue and a line in the log", () => {
    const dir = scratch();
    const lines: string[] = [];
    const store = queueFile(dir, (line) => lines.push(line));
    expect(store.load()).toEqual([]);
    writeFileSync(join(dir, "queue.json"), "{not json");
    expect(store.load()).toEqual([]);
    expect(lines.join()).toContain("starting with an empty queue");
    expect(readFileSync(join(dir, "queue.json"), "utf8")).toBe("{not json");
  });
  test("entries that are not places are dropped, the rest kept in order", () => {
    const text = JSON.stringify({
      places: [
        { sessionId: "0123456789ab", uid: 1000, count: 1 },
        { sessionId: "../../etc", uid: 0, count: 1 },
        { sessionId: "aaaaaaaaaaaa", uid: -1, count: 1 },
        { sessionId: "bbbbbbbbbbbb", uid: 1, count: 0 },
        "text",
        null,
        { sessionId: "cccccccccccc", uid: 2, count: 3, extra: "dropped" },
      ],
    });
    expect(parsePlaces(text)).toEqual([
      { sessionId: "0123456789ab", uid: 1000, count: 1 },
      { sessionId: "cccccccccccc", uid: 2, count: 3 },
    ]);
  });
});
