/**
 * Every failed connection is one line in Beaker's words, exit 1, on any command; --debug adds the underlying error. An
 * "executor" that breaks off its answers (as one killed mid-request does) stands in for the real one.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { removeDir, runBeaker, tempDir } from "../harness.ts";

const dir = tempDir("beaker-broken-");
const socket = join(dir, "executor.sock");
let server: ReturnType<typeof Bun.listen> | null = null;

beforeAll(() => {
  mkdirSync(join(dir, "proofs"), { mode: 0o1733 });
  mkdirSync(join(dir, "home", ".beaker"), { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, "home", ".beaker", "config.yml"), "reconnect_timeout: 1\n", { mode: 0o600 });
  server = Bun.listen({
    unix: socket,
    socket: {
      data(s, data) {
        const head = data.toString();
        // Health: closed at once (no executor answers). Creates: the first event, then the line is cut. Others: a
        // body shorter than its length says.
        if (head.startsWith("GET /v1/health")) return void s.end();
        if (head.startsWith("POST /v1/sessions")) {
          s.write('HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n');
          const line = '{"type":"ticket","sessionId":"0123456789ab","ticket":"a.b"}\n{"type":"queued"';
          s.write(`${line.length.toString(16)}\r\n${line}\r\n`);
          return void setTimeout(() => s.terminate(), 50);
        }
        s.write("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n[{");
        setTimeout(() => s.terminate(), 50);
      },
    },
  });
});
afterAll(() => {
  server?.stop(true);
  removeDir(dir);
});

const env = { BEAKER_EXECUTOR_SOCKET: socket, HOME: join(dir, "home"), BEAKER_CONFIG: join(dir, "home", ".beaker", "config.yml") };

test("an answer broken off: one line that says what happened and what to do, exit 1", async () => {
  const r = await runBeaker(["session", "list"], { env });
  expect(r).toEqual({
    exitCode: 1,
    stdout: "",
    stderr:
      "beaker: lost the connection to the executor (the connection was closed before the answer was complete); it may be restarting: try again in a moment ('beaker executor status' says whether it runs)\n",
  });
});

test("--debug adds the underlying error", async () => {
  const r = await runBeaker(["session", "list", "--debug"], { env });
  expect(r.exitCode).toBe(1);
  expect(r.stderr.split("\n")[0]).toStartWith("beaker: lost the connection to the executor");
  expect(r.stderr).toContain("caused by: ");
  expect(r.stderr).toContain("ECONNRESET");
});

test("a create whose executor does not come back within reconnect_timeout: the reconnect line, then one line", async () => {
  const r = await runBeaker(["session", "create", "--detach", "--gpus", "1", "--", "true"], { env });
  expect(r).toEqual({
    exitCode: 1,
    stdout: "",
    stderr: "executor restarting; reconnecting...\nbeaker: the executor did not come back within 1 s (reconnect_timeout); 'beaker executor status' says whether it runs\n",
  });
});

test("a server that refuses connections, and one that does not resolve: one line each", async () => {
  const refused = await runBeaker(["account", "whoami"], { env: { ...env, BEAKER_SERVER: "http://127.0.0.1:1", BEAKER_TOKEN: "t" } });
  expect(refused).toEqual({ exitCode: 1, stdout: "", stderr: "beaker: cannot reach the Beaker server at http://127.0.0.1:1: nothing accepts connections there\n" });
  const unknown = await runBeaker(["account", "whoami"], { env: { ...env, BEAKER_SERVER: "http://beaker.invalid", BEAKER_TOKEN: "t" } });
  expect(unknown.exitCode).toBe(1);
  expect(unknown.stderr).toMatch(/^beaker: cannot reach the Beaker server at http:\/\/beaker\.invalid: the host name does not resolve( \(DNS did not answer\))?\n$/);
});
