/**
 * ensureNestedPaths for real, in a temporary folder (run as root, as scripts/test does): what is made, by whom, what is
 * refused (links, files in the way, folders the user may not search or write) and the one-line refusals.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../../src/errors.ts";
import { ensureNestedPaths, type NestedPath } from "../../src/executor/sessions/mountpoints.ts";
import type { SessionUser } from "../../src/runtime/docker/spec.ts";

const root: SessionUser = { name: "root", uid: 0, gid: 0, groups: [], home: "/root", gecos: "" };
/** The test users' ids as this machine gave them (scripts/test makes the users). */
const idOf = (flag: "-u" | "-g", user: string) => Number(Bun.spawnSync(["id", flag, user]).stdout.toString().trim());
const TESTER_UID = idOf("-u", "beaker-test-user");
const TESTER_GID = idOf("-g", "beaker-test-user");
const tester: SessionUser = { name: "beaker-test-user", uid: TESTER_UID, gid: TESTER_GID, groups: [], home: "/home/beaker-test-user", gecos: "" };
/** A group the tester is not in. */
const OTHER_GID = idOf("-g", "beaker-test-other");

let base = "";
let n = 0;
/** A fresh host folder for one test: owned by `uid`, mode `mode`. */
function hostDir(uid = tester.uid, mode = 0o755): string {
  const dir = join(base, `h${n++}`);
  mkdirSync(dir);
  chownSync(dir, uid, uid);
  chmodSync(dir, mode);
  return dir;
}
const workdir = (dir: string, parts: string[]): NestedPath => ({ path: `/data/${parts.join("/")}`, flag: "--workdir", parentTarget: "/data", hostDir: dir, parts, source: null });
const mount = (dir: string, parts: string[], source: string): NestedPath => ({ path: `/data/${parts.join("/")}`, flag: "--mount", parentTarget: "/data", hostDir: dir, parts, source });
const cannot = (flag: string, path: string, who = "beaker-test-user") =>
  new UsageError(`${flag} ${path}: it does not exist and you (${who}) cannot make it in /data; make it first, or use another path`);
const linkInTheWay = (flag: string, path: string) =>
  new UsageError(`${flag} ${path}: a link or a file is on the way inside /data (links there are not followed); name the real path`);
const owner = (path: string) => ({ uid: lstatSync(path).uid, gid: lstatSync(path).gid, dir: lstatSync(path).isDirectory(), file: lstatSync(path).isFile() });

let fileSource = "";
let dirSource = "";
beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), "beaker-mountpoints-"));
  chmodSync(base, 0o755);
  fileSource = join(base, "source-file");
  writeFileSync(fileSource, "x");
  dirSource = join(base, "source-dir");
  mkdirSync(dirSource);
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe("what is missing is made by the user", () => {
  test("root: the folders, owned by root", async () => {
    const dir = hostDir(0);
    await ensureNestedPaths([workdir(dir, ["a", "b"])], root);
    expect(owner(join(dir, "a/b"))).toEqual({ uid: 0, gid: 0, dir: true, file: false });
  });
  test("a user: the folders, owned by their uid and gid, in their own folder", async () => {
    const dir = hostDir();
    await ensureNestedPaths([workdir(dir, ["a", "b", "c"])], tester);
    for (const p of ["a", "a/b", "a/b/c"]) expect(owner(join(dir, p))).toEqual({ uid: TESTER_UID, gid: TESTER_GID, dir: true, file: false });
  });
  test("only the missing part, from the deepest folder found", async () => {
    const dir = hostDir();
    mkdirSync(join(dir, "a"));
    chownSync(join(dir, "a"), TESTER_UID, TESTER_GID);
    await ensureNestedPaths([workdir(dir, ["a", "b", "c"])], tester);
    expect(owner(join(dir, "a/b/c"))).toEqual({ uid: TESTER_UID, gid: TESTER_GID, dir: true, file: false });
    expect(readdirSync(join(dir, "a"))).toEqual(["b"]);
  });
  test("a file mount's target is made a file, its folders folders", async () => {
    const dir = hostDir();
    await ensureNestedPaths([mount(dir, ["d", "e", "f.txt"], fileSource)], tester);
    expect(owner(join(dir, "d/e"))).toEqual({ uid: TESTER_UID, gid: TESTER_GID, dir: true, file: false });
    expect(owner(join(dir, "d/e/f.txt"))).toEqual({ uid: TESTER_UID, gid: TESTER_GID, dir: false, file: true });
  });
  test("a file mount's target alone missing: just the file", async () => {
    const dir = hostDir();
    await ensureNestedPaths([mount(dir, ["f.txt"], fileSource)], tester);
    expect(owner(join(dir, "f.txt"))).toEqual({ uid: TESTER_UID, gid: TESTER_GID, dir: false, file: true });
    expect(readdirSync(dir)).toEqual(["f.txt"]);
  });
  test("a folder mount's target is made a folder", async () => {
    const dir = hostDir();
    await ensureNestedPaths([mount(dir, ["m"], dirSource)], tester);
    expect(owner(join(dir, "m"))).toEqual({ uid: TESTER_UID, gid: TESTER_GID, dir: true, file: false });
  });
  test("every nested path is made", async () => {
    const dir = hostDir();
    await ensureNestedPaths([workdir(dir, ["w"]), mount(dir, ["m", "n"], dirSource)], tester);
    expect(readdirSync(dir).sort()).toEqual(["m", "w"]);
    expect(owner(join(dir, "m/n")).dir).toBe(true);
  });
  test("the user's supplementary groups count: all of them", async () => {
    const dir = hostDir(0);
    const shared = join(dir, "g");
    mkdirSync(shared);
    chownSync(shared, 0, OTHER_GID);
    chmodSync(shared, 0o770);
    await ensureNestedPaths([workdir(dir, ["g", "x"])], { ...tester, groups: [TESTER_GID, OTHER_GID] });
    expect(owner(join(shared, "x"))).toEqual({ uid: TESTER_UID, gid: TESTER_GID, dir: true, file: false });
  });
});

describe("what is there already is left alone", () => {
  test("an existing path in a folder the user may not write: nothing to make", async () => {
    const dir = hostDir(0);
    mkdirSync(join(dir, "a"));
    await ensureNestedPaths([workdir(dir, ["a"])], tester);
    expect(owner(join(dir, "a")).uid).toBe(0);
  });
  test("a file mount's target that is already a file", async () => {
    const dir = hostDir(0);
    writeFileSync(join(dir, "f"), "");
    await ensureNestedPaths([mount(dir, ["f"], fileSource)], tester);
    expect(owner(join(dir, "f")).file).toBe(true);
  });
  test("nothing nested: nothing done", async () => {
    await ensureNestedPaths([], tester);
  });
});

describe("refusals", () => {
  test("a folder the user may not write", async () => {
    const dir = hostDir(0);
    await expect(ensureNestedPaths([workdir(dir, ["a", "b"])], tester)).rejects.toThrow(cannot("--workdir", "/data/a/b"));
    expect(existsSync(join(dir, "a"))).toBe(false);
  });
  test("a folder the user may not write, for a file mount", async () => {
    const dir = hostDir(0);
    await expect(ensureNestedPaths([mount(dir, ["f"], fileSource)], tester)).rejects.toThrow(cannot("--mount", "/data/f"));
    expect(readdirSync(dir)).toEqual([]);
  });
  test("a file mount whose folders can be made but not its file", async () => {
    const dir = hostDir();
    mkdirSync(join(dir, "ro"));
    chmodSync(join(dir, "ro"), 0o555);
    chownSync(join(dir, "ro"), TESTER_UID, TESTER_GID);
    await expect(ensureNestedPaths([mount(dir, ["ro", "f"], fileSource)], tester)).rejects.toThrow(cannot("--mount", "/data/ro/f"));
    expect(readdirSync(join(dir, "ro"))).toEqual([]);
  });
  test("a folder the user may not search answers like a missing one, and nothing is made in it", async () => {
    const dir = hostDir(0);
    mkdirSync(join(dir, "g"));
    chmodSync(join(dir, "g"), 0o770);
    chownSync(join(dir, "g"), 0, 0);
    await expect(ensureNestedPaths([workdir(dir, ["g", "x"])], tester)).rejects.toThrow(cannot("--workdir", "/data/g/x"));
    expect(readdirSync(join(dir, "g"))).toEqual([]);
  });
  test("a path that exists inside a folder the user may not search is refused like a missing one", async () => {
    const dir = hostDir(0);
    mkdirSync(join(dir, "g/x"), { recursive: true });
    chmodSync(join(dir, "g"), 0o700);
    await expect(ensureNestedPaths([workdir(dir, ["g", "x"])], tester)).rejects.toThrow(cannot("--workdir", "/data/g/x"));
  });
  test("a group the user is not given does not count", async () => {
    const dir = hostDir(0);
    mkdirSync(join(dir, "g"));
    chownSync(join(dir, "g"), 0, OTHER_GID);
    chmodSync(join(dir, "g"), 0o770);
    await expect(ensureNestedPaths([workdir(dir, ["g", "x"])], { ...tester, groups: [TESTER_GID] })).rejects.toThrow(cannot("--workdir", "/data/g/x"));
    expect(readdirSync(join(dir, "g"))).toEqual([]);
  });
  test("a link on the way is not followed, even one the user owns", async () => {
    const dir = hostDir();
    const elsewhere = hostDir();
    symlinkSync(elsewhere, join(dir, "l"));
    await expect(ensureNestedPaths([workdir(dir, ["l", "x"])], tester)).rejects.toThrow(linkInTheWay("--workdir", "/data/l/x"));
    expect(readdirSync(elsewhere)).toEqual([]);
  });
  test("a link as the last name is refused too", async () => {
    const dir = hostDir();
    symlinkSync(hostDir(), join(dir, "l"));
    await expect(ensureNestedPaths([workdir(dir, ["l"])], root)).rejects.toThrow(linkInTheWay("--workdir", "/data/l"));
  });
  test("a file on the way", async () => {
    const dir = hostDir();
    writeFileSync(join(dir, "f"), "");
    await expect(ensureNestedPaths([mount(dir, ["f", "x"], dirSource)], tester)).rejects.toThrow(linkInTheWay("--mount", "/data/f/x"));
  });
  test("a host folder (or source) that is gone: the uniform refusal", async () => {
    const gone = join(base, "gone");
    await expect(ensureNestedPaths([workdir(gone, ["x"])], tester)).rejects.toThrow(cannot("--workdir", "/data/x"));
    await expect(ensureNestedPaths([mount(hostDir(), ["x"], join(base, "no-source"))], root)).rejects.toThrow(cannot("--mount", "/data/x", "root"));
  });
  test("the first refusal stops the rest", async () => {
    const dir = hostDir(0);
    await expect(ensureNestedPaths([workdir(dir, ["a"]), workdir(dir, ["b"])], tester)).rejects.toThrow(cannot("--workdir", "/data/a"));
    expect(readdirSync(dir)).toEqual([]);
  });
});

test("every handle it opened is closed, made or refused", async () => {
  const open = () => readdirSync("/proc/self/fd").length;
  const before = open();
  const dir = hostDir();
  await ensureNestedPaths([workdir(dir, ["a", "b"])], tester);
  await ensureNestedPaths([workdir(dir, ["a", "b"])], tester);
  await expect(ensureNestedPaths([workdir(hostDir(0), ["a"])], tester)).rejects.toThrow(UsageError);
  expect(open()).toBe(before);
});
