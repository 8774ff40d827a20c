/**
 * mounts.ts' edges: --mount's third field and its target's tidying, the policy's nulls and "/", permission bits, and the
 * component-by-component resolver for real in a temporary folder (relative links, link chains, fifos, handles).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, fstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ForbiddenError, UsageError } from "../../src/errors.ts";
import { checkMount, isForbiddenSource, openSourceAs, parseMountFlag, permits, sourcePolicy, type SourcePolicy } from "../../src/executor/sessions/mounts.ts";
import type { SessionUser } from "../../src/runtime/docker/spec.ts";

const tester: SessionUser = { name: "beaker-test-user", uid: 1001, gid: 1001, groups: [], home: "/home/beaker-test-user", gecos: "" };
const rootUser: SessionUser = { name: "root", uid: 0, gid: 0, groups: [], home: "/root", gecos: "" };

describe("parseMountFlag", () => {
  test.each([
    ["/a:/data", false],
    ["/a:/data:rw", false],
    ["/a:/data:ro", true],
  ])("%s: read-only %p", (flag, readOnly) => {
    expect(parseMountFlag(flag)).toEqual({ source: "/a", target: "/data", readOnly });
  });
  test("a target's trailing slash goes", () => {
    expect(parseMountFlag("/a:/data/x/").target).toBe("/data/x");
  });
  test("a system path inside the session is refused by name", () => {
    expect(() => parseMountFlag("/a:/etc/x")).toThrow(new UsageError('--mount "/a:/etc/x": /etc/x is a system path inside the session; mount somewhere else, like /data'));
  });
});

describe("the policy and the bits", () => {
  test("a home that does not resolve is still the home as written", () => {
    const policy = sourcePolicy({ mountPaths: [], refused: [] }, { uid: 1001, home: "/home/x" }, () => null);
    expect(policy.roots).toEqual(["/home/x"]);
  });
  test("a mountPath of / (or one that resolves to /) gives no root", () => {
    const policy = sourcePolicy({ mountPaths: ["/", "/l"], refused: [] }, { uid: 1001, home: "/" }, (p) => (p === "/l" ? "/" : p));
    expect(policy.roots).toEqual(["/l"]);
    expect(policy.listed).toEqual(["/", "/l"]);
  });
  test("root may do anything the bits say, even with no bits", () => {
    expect(permits({ uid: 5, gid: 5, mode: 0 }, rootUser, 4)).toBe(true);
  });
  test("the primary group counts without being listed in groups", () => {
    expect(permits({ uid: 0, gid: 1001, mode: 0o750 }, tester, 1)).toBe(true);
    expect(permits({ uid: 0, gid: 1002, mode: 0o750 }, tester, 1)).toBe(false);
  });
  test("the default refused list adds nothing", () => {
    expect(isForbiddenSource("/data")).toBe(false);
  });
});

let base = "";
let policy: SourcePolicy;
const refusal = (path: string) => new UsageError(`--mount ${path}: no such file or directory that you (beaker-test-user) can read`);
beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), "beaker-mounts-"));
  chmodSync(base, 0o755);
  policy = { roots: [base], anywhere: false, refused: [], listed: [] };
  mkdirSync(join(base, "sub"));
  writeFileSync(join(base, "sub/file"), "x");
  symlinkSync("sub", join(base, "rel"));
  symlinkSync("loop", join(base, "loop"));
  // A chain of 40 links reaches sub; one more is too many, as for the kernel.
  for (let i = 0; i < 41; i++) symlinkSync(i === 0 ? join(base, "sub") : join(base, `chain${i - 1}`), join(base, `chain${i}`));
  Bun.spawnSync(["mkfifo", join(base, "fifo")]);
  writeFileSync(join(base, "secret"), "x");
  chmodSync(join(base, "secret"), 0o600);
  mkdirSync(join(base, "noexec"));
  chmodSync(join(base, "noexec"), 0o744);
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe("openSourceAs", () => {
  test("a relative link resolves from its own folder", () => {
    const opened = openSourceAs(join(base, "rel/file"), tester, policy);
    expect(opened.path).toBe(join(base, "sub/file"));
    expect(opened.isDirectory).toBe(false);
    opened.close();
  });
  test("40 links in a row resolve; 41 are refused; a loop is refused", () => {
    const opened = openSourceAs(join(base, "chain39"), tester, policy);
    expect(opened.path).toBe(join(base, "sub"));
    opened.close();
    expect(() => openSourceAs(join(base, "chain40"), tester, policy)).toThrow(refusal(join(base, "chain40")));
    expect(() => openSourceAs(join(base, "loop"), tester, policy)).toThrow(refusal(join(base, "loop")));
  });
  test("a file as the last name is fine", () => {
    const opened = openSourceAs(join(base, "sub/file"), tester, policy);
    expect(opened.isDirectory).toBe(false);
    opened.close();
  });
  test("a file named as a folder (file/.) is refused, as the kernel would", () => {
    expect(() => openSourceAs(`${base}/sub/file/.`, tester, policy)).toThrow(refusal(`${base}/sub/file/.`));
  });
  test.each(["fifo", "secret", "noexec"])("%s (not a file or folder, not readable, not searchable) is refused", (name) => {
    expect(() => openSourceAs(join(base, name), tester, policy)).toThrow(refusal(join(base, name)));
  });
  test("the handle it returns is open until close, and only it is left open", () => {
    const fds = () => Array.from(new Bun.Glob("*").scanSync({ cwd: "/proc/self/fd", onlyFiles: false })).length;
    const before = fds();
    const opened = openSourceAs(join(base, "rel/file"), tester, policy);
    expect(fstatSync(opened.fd).isFile()).toBe(true);
    expect(fds()).toBe(before + 1);
    opened.close();
    expect(() => fstatSync(opened.fd)).toThrow();
    expect(fds()).toBe(before);
  });
});

describe("checkMount", () => {
  test("an allowed source comes back where it resolves, the rest of the mount kept", () => {
    expect(checkMount({ source: join(base, "rel"), target: "/data", readOnly: true }, tester, policy)).toEqual({ source: join(base, "sub"), target: "/data", readOnly: true });
  });
  test.each([
    [{ roots: [], anywhere: true, refused: [], listed: [] }, "--mount /etc/x: not allowed in a session"],
    [{ roots: ["/home/x"], anywhere: false, refused: [], listed: [] }, "--mount /etc/x: not allowed in a session (only your home)"],
  ])("the refusal names what is allowed, and only where there is something to name", (p, message) => {
    expect(() => checkMount({ source: "/etc/x", target: "/data", readOnly: false }, tester, p)).toThrow(new ForbiddenError(message));
  });
});
