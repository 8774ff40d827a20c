/**
 * A release manifest's shape (checked after its signature), the signature check itself, and which build this machine
 * needs: a musl system or a CPU without AVX2 gets its own, since the other one would not start there.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { UpdateError } from "../../src/errors.ts";
import { detectPlatform, parseManifest, verifySignature } from "../../src/update/manifest.ts";

const sha = "a".repeat(64);
const target = { file: "beaker-linux-x64", size: 10, sha256: sha };
const good = { version: "1.2.3", channel: "stable", date: "2026-12-01", targets: { "linux-x64": target } };
const malformed = (m: unknown) => {
  const err = (() => {
    try {
      parseManifest(JSON.stringify(m));
    } catch (e) {
      return e;
    }
  })();
  expect(err).toBeInstanceOf(UpdateError);
  expect((err as Error).message).toBe("the release manifest is malformed");
};

describe("parseManifest", () => {
  test("a good one is taken", () => {
    expect(parseManifest(JSON.stringify(good))).toEqual(good);
  });
  test.each<[string, unknown]>([
    ["null", null],
    ["a version that is no string", { ...good, version: 123 }],
    ["a channel that is no string", { ...good, channel: 5 }],
    ["targets that are no object", { ...good, targets: 5 }],
    ["a file name that is no string", { ...good, targets: { x: { ...target, file: 5 } } }],
    ["a size of 0", { ...good, targets: { x: { ...target, size: 0 } } }],
    ["a SHA-256 with a prefix", { ...good, targets: { x: { ...target, sha256: `x${sha}` } } }],
    ["a SHA-256 too long", { ...good, targets: { x: { ...target, sha256: `${sha}0` } } }],
    ["one good target and one bad", { ...good, targets: { a: target, b: { ...target, size: -1 } } }],
  ])("%s is malformed", (_, m) => {
    malformed(m);
  });
});

test("a key that is no Ed25519 key verifies nothing: false, never an error", async () => {
  const manifest = new TextEncoder().encode(JSON.stringify(good));
  expect(await verifySignature(manifest, "c2ln", "bm90IGEga2V5")).toBe(false);
});

describe("detectPlatform", () => {
  const machine = (files: Record<string, string>) => ({
    read: (path: string) => {
      if (!(path in files)) throw new Error(`ENOENT: ${path}`);
      return files[path]!;
    },
    exists: (path: string) => path in files,
  });
  const glibc = "/lib64/ld-linux-x86-64.so.2";
  const muslLoader = "/lib/ld-musl-x86_64.so.1";
  test.each<[string, Record<string, string>, boolean, boolean]>([
    ["glibc, AVX2", { "/proc/cpuinfo": "flags : fpu sse avx2 bmi2", [glibc]: "" }, false, true],
    ["a CPU without AVX2", { "/proc/cpuinfo": "flags : fpu sse avx avx2x", [glibc]: "" }, false, false],
    ["no /proc/cpuinfo: assume AVX2", { [glibc]: "" }, false, true],
    ["Alpine", { "/etc/alpine-release": "3.20", "/proc/cpuinfo": "avx2", [glibc]: "" }, true, true],
    ["only the musl loader", { [muslLoader]: "", "/proc/cpuinfo": "avx2" }, true, true],
    ["both loaders: glibc", { [muslLoader]: "", [glibc]: "", "/proc/cpuinfo": "avx2" }, false, true],
  ])("%s", (_, files, musl, avx2) => {
    expect(detectPlatform(machine(files))).toEqual({ os: process.platform, arch: process.arch, musl, avx2 });
  });
  test("by default, this machine's files", () => {
    const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
    expect(detectPlatform().avx2).toBe(/\bavx2\b/.test(cpuinfo));
  });
});
