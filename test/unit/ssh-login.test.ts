/**
 * Who the in-session SSH server runs as and what it starts: the passwd entry of the uid (a test file here, never the
 * machine's), a home that exists, a shell that can run, and the environment a shell gets.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildChildEnv, currentLoginUser, parsePasswdEntry, planProcess, type LoginUser } from "../../src/ssh/login.ts";
import { removeDir, tempDir } from "../harness.ts";

const dir = tempDir("beaker-ssh-login-");
afterAll(() => removeDir(dir));
const shell = join(dir, "zsh");
writeFileSync(shell, "#!/bin/sh\n", { mode: 0o755 });
const notExecutable = join(dir, "not-a-shell");
writeFileSync(notExecutable, "", { mode: 0o644 });
const passwd = (line: string) => {
  const path = join(dir, `passwd-${Bun.hash(line)}`);
  writeFileSync(path, `root:x:0:0:root:/root:/bin/sh\n${line}\n`);
  return path;
};
const missing = join(dir, "no-such-home");

describe("parsePasswdEntry", () => {
  test("lines without a name or a uid never match (an empty uid is not uid 0)", () => {
    expect(parsePasswdEntry("broken:x::0::/broken:/bin/sh\n:x:0:0::/empty:/bin/sh\nroot:x:0:0:root:/root:/bin/bash\n", 0)).toEqual({ name: "root", home: "/root", shell: "/bin/bash" });
  });
  test("a short entry: home /, no shell; CRLF lines lose their CR", () => {
    expect(parsePasswdEntry("ada:x:1234", 1234)).toEqual({ name: "ada", home: "/", shell: "" });
    expect(parsePasswdEntry("ada:x:1234:1234::/home/ada:/bin/zsh\r\n", 1234)).toEqual({ name: "ada", home: "/home/ada", shell: "/bin/zsh" });
  });
});

describe("currentLoginUser", () => {
  test("the passwd entry's name, home and shell, over what the environment says", () => {
    const user = currentLoginUser({ USER: "env-user", HOME: "/" }, passwd(`ada:x:1234:1234::${dir}:${shell}`), 1234);
    expect(user).toEqual({ name: "ada", uid: 1234, home: dir, shell });
  });
  test("a home that does not exist: $HOME when it does, else /", () => {
    const file = passwd(`ada:x:1234:1234::${missing}:${shell}`);
    expect(currentLoginUser({ HOME: dir }, file, 1234).home).toBe(dir);
    expect(currentLoginUser({ HOME: missing }, file, 1234).home).toBe("/");
    expect(currentLoginUser({}, file, 1234).home).toBe("/");
  });
  test("a login shell that cannot run: /bin/sh", () => {
    expect(currentLoginUser({}, passwd(`ada:x:1234:1234::${dir}:${notExecutable}`), 1234).shell).toBe("/bin/sh");
  });
  test("no entry for the uid, or no passwd file: $USER or the uid, $HOME, /bin/sh", () => {
    const file = passwd(`ada:x:1234:1234::${dir}:${shell}`);
    expect(currentLoginUser({ USER: "bob", HOME: dir }, file, 999)).toEqual({ name: "bob", uid: 999, home: dir, shell: "/bin/sh" });
    expect(currentLoginUser({}, join(dir, "no-passwd"), 999)).toEqual({ name: "999", uid: 999, home: "/", shell: "/bin/sh" });
  });
  test("by default: this process's uid in /etc/passwd", () => {
    const uid = process.getuid!();
    const entry = parsePasswdEntry(readFileSync("/etc/passwd", "utf8"), uid);
    const user = currentLoginUser({ USER: "env-user" });
    expect(user.uid).toBe(uid);
    expect(user.name).toBe(entry?.name ?? "env-user");
  });
});

describe("what runs", () => {
  const noShell: LoginUser = { name: "ada", uid: 1234, home: "/", shell: null };
  test("no shell: a command of only spaces is no command", () => {
    expect(planProcess(noShell, "   ")).toEqual({ error: "empty command" });
    expect(planProcess(noShell, "  /app/tool  -v ")).toEqual({ argv: ["/app/tool", "-v"] });
  });
  test("the environment: unset variables are left out, and SHELL only when there is one", () => {
    const env = buildChildEnv({ GONE: undefined, KEEP: "k" }, { user: noShell, term: null, sent: {}, agentSocket: null });
    expect(Object.keys(env).sort()).toEqual(["HOME", "KEEP", "LOGNAME", "USER"]);
  });
});
