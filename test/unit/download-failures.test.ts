/**
 * How a release download fails: no server, a connection that breaks off, a full or failing disk. Each says which, keeps
 * the cause, and leaves no partial file. A local HTTP server plays the release server; the disk is a stand-in.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UpdateError } from "../../src/errors.ts";
import { downloadVerified } from "../../src/update/download.ts";

const dir = mkdtempSync(join(tmpdir(), "beaker-download-"));
const body = new Uint8Array(1000).fill(7);
const expected = { size: body.length, sha256: createHash("sha256").update(body).digest("hex") };
let server: ReturnType<typeof Bun.serve>;
let base = "";
let broken: Bun.TCPSocketListener<undefined>;
let n = 0;
const target = () => join(dir, `file-${n++}`);

beforeAll(() => {
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch() {
      return new Response(body);
    },
  });
  base = `http://127.0.0.1:${server.port}`;
  // Says 1000 bytes, sends half of them, and hangs up.
  broken = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(socket) {
        socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`);
        socket.write(body.slice(0, 500));
        socket.end();
      },
    },
  });
});
afterAll(() => {
  server?.stop(true);
  broken?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

const failure = async (url: string, path: string, io?: Parameters<typeof downloadVerified>[4]) => {
  const err = await downloadVerified(url, path, expected, () => {}, io).then(() => new Error("it did not fail"), (e: unknown) => e as Error);
  expect(err).toBeInstanceOf(UpdateError);
  expect(existsSync(path)).toBe(false);
  return err;
};

test("no server: cannot download, with the connection's failure as the cause", async () => {
  const closed = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("") });
  const url = `http://127.0.0.1:${closed.port}/beaker`;
  closed.stop(true);
  const err = await failure(url, target());
  expect(err.message).toStartWith(`cannot download ${url}: `);
  expect(err.cause).toBeDefined();
});

test("a connection that breaks off: how far it got, with the cause", async () => {
  const url = `http://127.0.0.1:${broken.port}/beaker`;
  const err = await failure(url, target());
  expect(err.message).toMatch(new RegExp(`^the download of ${url} broke off after \\d+ of 1000 bytes: .`));
  expect(err.cause).toBeDefined();
});

const diskError = (code: string, message: string) => Object.assign(new Error(message), { code });
const fsync = () => {};

test("a full disk says so, with the size needed", async () => {
  const err = await failure(`${base}/beaker`, target(), { write: () => { throw diskError("ENOSPC", "ENOSPC: no space left on device"); }, fsync });
  expect(err.message).toBe("not enough disk space beside the binary for the new one (1000 bytes)");
});

test("another write error is named", async () => {
  const err = await failure(`${base}/beaker`, target(), { write: () => { throw diskError("EIO", "EIO: i/o error, write"); }, fsync });
  expect(err.message).toBe("cannot write the download: EIO: i/o error, write");
});

test("a flush to disk that fails: nothing is kept", async () => {
  const err = await failure(`${base}/beaker`, target(), { write: () => {}, fsync: () => { throw diskError("EIO", "EIO: i/o error, fsync"); } });
  expect(err.message).toBe("cannot write the download: EIO: i/o error, fsync");
});

test("the bytes are flushed to disk before the download counts as done", async () => {
  const calls: string[] = [];
  await downloadVerified(`${base}/beaker`, target(), expected, () => {}, { write: () => void calls.push("write"), fsync: () => void calls.push("fsync") });
  expect(calls.at(-1)).toBe("fsync");
  expect(calls).toContain("write");
});
