/**
 * The edges of caller proofs that proof.test.ts does not reach: the wire names, descriptors closed, each clock checked
 * on its own and at its boundary, a file swapped between the lstat and the open, and the sweep's races and per-uid bound.
 * Races are staged by wrapping node:fs calls (spyOn), never by waiting; time is given to verifyProof and sweepProofs.
 */
import { afterEach, describe, expect, spyOn, test } from "bun:test";
import * as fs from "node:fs";
import { existsSync, mkdirSync, readdirSync, renameSync, statSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AuthError } from "../../src/errors.ts";
import { createProof, proofHeader, sweepProofs, tokenHeader, verifyProof } from "../../src/executor/proof.ts";
import { scopedDir } from "../harness.ts";

const realLstat = fs.lstatSync;
const realReaddir = fs.readdirSync;
const openFds = () => readdirSync("/proc/self/fd").length;
const messageOf = (f: () => unknown): unknown => {
  try {
    return f();
  } catch (err) {
    return (err as Error).message;
  }
};
let restore: Array<{ mockRestore(): void }> = [];
afterEach(() => {
  for (const s of restore) s.mockRestore();
  restore = [];
});

describe("proof wire names and descriptors", () => {
  test("the headers clients send are named as every released client names them", () => {
    expect(proofHeader).toBe("x-beaker-proof");
    expect(tokenHeader).toBe("x-beaker-token");
  });
  test("neither writing nor checking a proof leaves a descriptor open (the executor checks one per request)", () => {
    using dir = scopedDir("beaker-proof-");
    const before = openFds();
    for (let i = 0; i < 20; i++) expect(verifyProof(dir.path, createProof(dir.path).header)).toBe(process.getuid!());
    expect(openFds()).toBeLessThan(before + 5);
  });
});

describe("verifyProof edges", () => {
  test("a header with anything before the name is malformed, even when it ends in a valid proof", () => {
    using dir = scopedDir("beaker-proof-");
    const proof = createProof(dir.path);
    for (const header of [`../${proof.header}`, `x${proof.header}`]) {
      expect(() => verifyProof(dir.path, header)).toThrow(new AuthError("missing or malformed caller proof"));
    }
    expect(existsSync(proof.path)).toBe(true);
  });
  test("a file of exactly 128 bytes is read and does not match; it is not 'too large'", () => {
    using dir = scopedDir("beaker-proof-");
    const name = "a".repeat(32);
    writeFileSync(join(dir.path, name), "1".repeat(128), { mode: 0o600 });
    expect(() => verifyProof(dir.path, `${name}:${"1".repeat(64)}`)).toThrow(new AuthError("caller proof does not match"));
  });
  test("a missing proof is named by its error code", () => {
    using dir = scopedDir("beaker-proof-");
    expect(() => verifyProof(dir.path, `${"b".repeat(32)}:${"0".repeat(64)}`)).toThrow(new AuthError("caller proof cannot be checked: ENOENT"));
  });
});

describe("verifyProof: modification and change times, each on its own", () => {
  /** A proof whose mtime is set to `mtimeSeconds` (its ctime is then the time of that change). */
  const proofWithMtime = (dir: string, mtimeSeconds: number) => {
    const proof = createProof(dir);
    utimesSync(proof.path, mtimeSeconds, mtimeSeconds);
    return { ...proof, stat: statSync(proof.path) };
  };
  const nowSeconds = () => Math.floor(Date.now() / 1000);

  test("an mtime two minutes back is stale though the ctime is fresh", () => {
    using dir = scopedDir("beaker-proof-");
    const proof = proofWithMtime(dir.path, nowSeconds() - 120);
    expect(messageOf(() => verifyProof(dir.path, proof.header, proof.stat.ctimeMs))).toBe("caller proof is stale");
  });
  test("a ctime past a minute is stale though the mtime (set ahead) is fresh", () => {
    using dir = scopedDir("beaker-proof-");
    const proof = proofWithMtime(dir.path, nowSeconds() + 61);
    const now = proof.stat.ctimeMs + 61_000;
    expect(Math.abs(now - proof.stat.mtimeMs)).toBeLessThan(60_000);
    expect(messageOf(() => verifyProof(dir.path, proof.header, now))).toBe("caller proof is stale");
  });
  test("an mtime exactly a minute back still counts", () => {
    using dir = scopedDir("beaker-proof-");
    const proof = proofWithMtime(dir.path, nowSeconds() - 30);
    const now = proof.stat.mtimeMs + 60_000;
    expect(now - proof.stat.mtimeMs).toBe(60_000);
    expect(Math.abs(now - proof.stat.ctimeMs)).toBeLessThan(60_000);
    expect(verifyProof(dir.path, proof.header, now)).toBe(process.getuid!());
  });
  test("a ctime exactly a minute back still counts", () => {
    using dir = scopedDir("beaker-proof-");
    const proof = proofWithMtime(dir.path, nowSeconds() + 30);
    const now = proof.stat.ctimeMs + 60_000;
    expect(now - proof.stat.ctimeMs).toBe(60_000);
    expect(Math.abs(now - proof.stat.mtimeMs)).toBeLessThan(60_000);
    expect(verifyProof(dir.path, proof.header, now)).toBe(process.getuid!());
  });
});

describe("verifyProof: a file swapped in between the lstat and the open", () => {
  test("is refused, though it holds the right secret and passes every check, and the name is consumed", () => {
    using dir = scopedDir("beaker-proof-");
    const proof = createProof(dir.path);
    const substitute = join(dir.path, "substitute");
    writeFileSync(substitute, fs.readFileSync(proof.path), { mode: 0o600 });
    restore.push(
      spyOn(fs, "lstatSync").mockImplementation(((path: string, options?: fs.StatSyncOptions) => {
        const st = realLstat(path, options);
        if (path === proof.path) renameSync(substitute, proof.path);
        return st;
      }) as typeof fs.lstatSync),
    );
    expect(() => verifyProof(dir.path, proof.header)).toThrow(new AuthError("caller proof changed while read"));
    expect(existsSync(proof.path)).toBe(false);
  });
});

describe("sweepProofs edges", () => {
  test("a file exactly a minute old stays", () => {
    using dir = scopedDir("beaker-proof-");
    const proof = createProof(dir.path);
    const changed = statSync(proof.path).ctimeMs;
    expect(sweepProofs(dir.path, changed + 60_000)).toBe(0);
    expect(existsSync(proof.path)).toBe(true);
  });
  test("a folder with files in it goes, all of it", () => {
    using dir = scopedDir("beaker-proof-");
    mkdirSync(join(dir.path, "folder", "sub"), { recursive: true });
    writeFileSync(join(dir.path, "folder", "sub", "file"), "x");
    expect(sweepProofs(dir.path)).toBe(1);
    expect(existsSync(join(dir.path, "folder"))).toBe(false);
  });
  test("a proof consumed between the listing and its lstat is passed over", () => {
    using dir = scopedDir("beaker-proof-");
    const consumed = createProof(dir.path);
    mkdirSync(join(dir.path, "folder"));
    restore.push(
      spyOn(fs, "readdirSync").mockImplementation(((path: string) => {
        const names = realReaddir(path);
        unlinkSync(consumed.path);
        return names;
      }) as unknown as typeof fs.readdirSync),
    );
    expect(sweepProofs(dir.path)).toBe(1);
  });

  test("a stale proof consumed between its lstat and its removal is no error", () => {
    using dir = scopedDir("beaker-proof-");
    const proof = createProof(dir.path);
    const changed = statSync(proof.path).ctimeMs;
    restore.push(
      spyOn(fs, "lstatSync").mockImplementation(((path: string, options?: fs.StatSyncOptions) => {
        const st = realLstat(path, options);
        if (path === proof.path) unlinkSync(path);
        return st;
      }) as typeof fs.lstatSync),
    );
    expect(sweepProofs(dir.path, changed + 61_000)).toBe(1);
  });

  /** 70 files of one uid whose ctimes (as lstat reports them) run in an order unlike their names'. */
  const crowd = (dir: string, now: number) => {
    const names = Array.from({ length: 70 }, (_, i) => `f${String(i).padStart(2, "0")}`);
    const ageOf = new Map(names.map((n, i) => [join(dir, n), ((i * 37) % 70) * 100]));
    for (const n of names) writeFileSync(join(dir, n), "x", { mode: 0o600 });
    const oldest = [...ageOf.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([p]) => p);
    return { ageOf, oldest, now };
  };
  const fakeCtimes = (ageOf: Map<string, number>, now: number, after?: (path: string) => void) =>
    restore.push(
      spyOn(fs, "lstatSync").mockImplementation(((path: string, options?: fs.StatSyncOptions) => {
        const st = realLstat(path, options);
        const age = ageOf.get(path);
        if (st && age !== undefined) Object.defineProperty(st, "ctimeMs", { value: now - age });
        after?.(path);
        return st;
      }) as typeof fs.lstatSync),
    );

  test("past 64 files of one uid, the oldest by ctime go and the 64 newest stay", () => {
    using dir = scopedDir("beaker-proof-");
    const { ageOf, oldest, now } = crowd(dir.path, Date.now());
    fakeCtimes(ageOf, now);
    expect(sweepProofs(dir.path, now)).toBe(6);
    const left = new Set(realReaddir(dir.path).map((n) => join(dir.path, n)));
    expect(left.size).toBe(64);
    for (const p of oldest) expect(left.has(p)).toBe(false);
  });
  test("one of the oldest consumed before the sweep removes it is no error", () => {
    using dir = scopedDir("beaker-proof-");
    const { ageOf, oldest, now } = crowd(dir.path, Date.now());
    fakeCtimes(ageOf, now, (path) => {
      if (path === oldest[0]) unlinkSync(path);
    });
    expect(sweepProofs(dir.path, now)).toBe(6);
    expect(realReaddir(dir.path).length).toBe(64);
  });
});
