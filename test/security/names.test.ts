/**
 * Issue 26, finding 4: root acted on another user's session by name. Another user's session named `dev`, started with
 * `--env LD_PRELOAD=` a library in their home that writes down every process it is loaded into (and, in Beaker's SSH
 * server, the host key the proxy sends on stdin). Root's `dev` is root's own session or none; another user's session
 * is reached only by its full ID or `--user`; no secret of root's goes into it, and nothing Beaker starts inside it
 * loads the user's library.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { otherUser, TestExecutor, testUser } from "../executor-harness.ts";
import { eventually, removeDir, tempDir, testNodeName, within } from "../harness.ts";
import { sshServerCommand } from "../../src/ssh/host.ts";
import { terminalSocket, uidOf } from "./harness.ts";

const node = testNodeName(import.meta.file);
const executor = new TestExecutor({ nodeName: node });
const spyDir = `/home/${otherUser}/names-${randomBytes(4).toString("hex")}`;
const seenLog = join(spyDir, "seen.log");
const stolen = join(spyDir, "stdin.bin");
/** Root's home for these runs: its host key is made here, not in the machine's /root. */
const rootHome = tempDir("beaker-names-root-");
const rootKey = join(rootHome, ".beaker", "ssh_host_ed25519_key");
/** Variables that change what code a process runs; the session has them all. */
const loaderEnv = ["LD_LIBRARY_PATH=/nonexistent/lib", "BASH_ENV=/nonexistent/env.sh", "NODE_OPTIONS=--require=/nonexistent/x.js", "PYTHONPATH=/nonexistent"];
let victimId = "";

/** The spy: a constructor that logs uid and argv, and in `ssh-server` reads what stdin brings (the host key). */
const spySource = `
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
__attribute__((constructor)) static void spy(void) {
  char cmd[4096];
  int fd = open("/proc/self/cmdline", O_RDONLY);
  ssize_t n = fd >= 0 ? read(fd, cmd, sizeof cmd - 1) : 0;
  if (fd >= 0) close(fd);
  if (n < 0) n = 0;
  cmd[n] = 0;
  for (ssize_t i = 0; i < n; i++) if (!cmd[i]) cmd[i] = ' ';
  int out = open("${seenLog}", O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (out >= 0) { dprintf(out, "uid=%d %s\\n", (int)getuid(), cmd); close(out); }
  if (!strstr(cmd, "ssh-server")) return;
  static char buf[65536];
  ssize_t got = read(0, buf, sizeof buf);
  int keep = open("${stolen}", O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (keep >= 0 && got > 0) write(keep, buf, got);
  if (keep >= 0) close(keep);
}
`;

function buildSpy(): string {
  mkdirSync(spyDir, { mode: 0o755 });
  writeFileSync(join(spyDir, "spy.c"), spySource);
  const library = join(spyDir, "spy.so");
  const cc = Bun.spawnSync(["cc", "-shared", "-fPIC", "-o", library, join(spyDir, "spy.c")]);
  if (cc.exitCode !== 0) throw new Error(`cc: ${cc.stderr.toString()}`);
  const uid = uidOf(otherUser);
  for (const path of [spyDir, library]) chownSync(path, uid, uid);
  return library;
}

const seen = () => (existsSync(seenLog) ? readFileSync(seenLog, "utf8") : "");
const asRoot = (args: string[], stdin?: string) => executor.run(args, { env: { HOME: rootHome }, ...(stdin === undefined ? {} : { stdin }) });

async function status(id: string): Promise<string> {
  const r = await executor.run(["session", "describe", id, "--json"], { user: otherUser });
  if (r.exitCode !== 0) throw new Error(`describe ${id}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { status: string }).status;
}

beforeAll(async () => {
  executor.removeLeftovers();
  await executor.start();
  const library = buildSpy();
  const env = [`LD_PRELOAD=${library}`, ...loaderEnv].flatMap((e) => ["--env", e]);
  const r = await executor.run(["session", "create", "--detach", "--gpus", "0", "--name", "dev", ...env, "--", "sleep", "infinity"], { user: otherUser });
  if (r.exitCode !== 0) throw new Error(`session create: ${r.stderr}`);
  victimId = r.stdout.trim().split("\n")[0]!;
  // The spy works: the session's own process loaded it.
  await eventually(() => seen().includes("sleep infinity"), 20_000, { what: "the spy to log the session's sleep", detail: seen });
});
afterAll(async () => {
  await executor.cleanup();
  removeDir(spyDir);
  removeDir(rootHome);
});

describe("names resolve within the caller's own sessions, root included", () => {
  test("root with no session named dev: describe, exec, stop and proxy dev say not found and never touch the other user's dev", async () => {
    const before = seen();
    for (const args of [["session", "describe", "dev"], ["session", "exec", "dev", "--", "id", "-u"], ["session", "stop", "dev"]]) {
      const r = await asRoot(args);
      expect({ args, code: r.exitCode, stderr: r.stderr.trim() }).toEqual({ args, code: 5, stderr: "beaker: no session dev of yours on this node" });
    }
    const proxy = await asRoot(["session", "proxy", "dev.beaker"], "");
    expect({ code: proxy.exitCode, stderr: proxy.stderr.trim() }).toEqual({ code: 5, stderr: "beaker: no session dev of yours on this node" });
    expect(await status(victimId)).toBe("running");
    expect(seen()).toBe(before);
    expect(existsSync(stolen)).toBe(false);
  });

  test("root's own dev, newer than the other user's: describe, exec and stop dev act on root's", async () => {
    const made = await asRoot(["session", "create", "--detach", "--gpus", "0", "--name", "dev", "--", "sleep", "infinity"]);
    expect(made.exitCode).toBe(0);
    const own = made.stdout.trim().split("\n")[0]!;
    const before = seen();
    const described = await asRoot(["session", "describe", "dev", "--json"]);
    expect(described.exitCode).toBe(0);
    expect((JSON.parse(described.stdout) as { id: string }).id).toBe(own);
    const exec = await asRoot(["session", "exec", "dev", "--", "id", "-u"]);
    expect({ code: exec.exitCode, out: exec.stdout.trim() }).toEqual({ code: 0, out: "0" });
    const stop = await asRoot(["session", "stop", "dev", "--timeout", "1"]);
    expect({ code: stop.exitCode, stderr: stop.stderr.trim() }).toEqual({ code: 0, stderr: `stopped session dev (${own})` });
    expect(await status(victimId)).toBe("running");
    expect(seen()).toBe(before);
  });
});

describe("what Beaker sends and starts in a session", () => {
  test("root's proxy to the other user's session by full ID is refused: root's host key never goes in", async () => {
    const before = seen();
    const r = await asRoot(["session", "proxy", `${victimId}.beaker`], "");
    const key = existsSync(rootKey) ? readFileSync(rootKey, "utf8") : null;
    const inside = existsSync(stolen) ? readFileSync(stolen, "utf8") : "";
    expect({ keyInSession: key !== null && inside.includes(key.trim()), stdinRead: inside.length }).toEqual({ keyInSession: false, stdinRead: 0 });
    expect(seen()).toBe(before);
    expect({ code: r.exitCode, stderr: r.stderr.trim() }).toEqual({
      code: 4,
      stderr: `beaker: session dev (${victimId}) belongs to ${otherUser}: 'beaker session proxy' opens only your own sessions`,
    });
  });

  test("the executor starts Beaker's ssh-server for root in another user's session by full ID: never", async () => {
    const before = seen();
    const ws = await terminalSocket(executor, 0, `/v1/sessions/${victimId}/exec?cmd=${encodeURIComponent(JSON.stringify(sshServerCommand))}`);
    const first = await within(new Promise<string>((resolve) => (ws.onmessage = (e) => resolve(String(e.data)))), 10_000, "the executor's first message on the exec socket", seen);
    ws.close();
    expect(JSON.parse(first)).toEqual({ type: "error", code: "forbidden", message: `Beaker's SSH server runs only in your own sessions: dev is ${otherUser}'s` });
    expect(seen()).toBe(before);
  });

  test("the ssh-server Beaker starts in the session has none of the session's loader or interpreter variables", async () => {
    const proxy = executor.spawn(["session", "proxy", "dev.beaker"], { user: otherUser, stdin: { pipe: true } });
    try {
      const pid = await eventually(
        () => {
          const top = Bun.spawnSync(["docker", "top", `beaker-${victimId}`, "-eo", "pid,args"]).stdout.toString();
          return /^\s*(\d+)\s.*ssh-server --stdio/m.exec(top)?.[1];
        },
        20_000,
        { what: "beaker ssh-server in the session", detail: seen },
      );
      const environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean);
      const keys = environ.map((e) => e.slice(0, e.indexOf("=")));
      const forbidden = ["LD_PRELOAD", ...loaderEnv.map((e) => e.slice(0, e.indexOf("=")))];
      expect(keys.filter((k) => forbidden.includes(k))).toEqual([]);
      expect(seen()).not.toContain("ssh-server");
    } finally {
      proxy.kill();
      await proxy.exited;
    }
  });
});

describe("root reaches another user's session only by its full ID or --user", () => {
  test("another user's --user is the usual not found; root's --user and full ID describe it, --user stops it", async () => {
    const other = await executor.run(["session", "describe", "dev", "--user", otherUser], { user: testUser });
    expect({ code: other.exitCode, stderr: other.stderr.trim() }).toEqual({ code: 5, stderr: "beaker: no session dev of yours on this node" });
    for (const args of [["session", "describe", "dev", "--user", otherUser, "--json"], ["session", "describe", victimId, "--json"]]) {
      const r = await asRoot(args);
      expect({ args, code: r.exitCode, stderr: r.stderr }).toEqual({ args, code: 0, stderr: "" });
      expect((JSON.parse(r.stdout) as { id: string; uid: number }).id).toBe(victimId);
    }
    const stop = await asRoot(["session", "stop", "dev", "--user", otherUser, "--timeout", "1"]);
    expect({ code: stop.exitCode, stderr: stop.stderr.trim() }).toEqual({ code: 0, stderr: `stopped session dev (${victimId})` });
    expect(await status(victimId)).toBe("exited");
  });
});
