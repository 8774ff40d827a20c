/** Release runtimes: fetched with retries and backoff, kept in a cache outside the clone, verified at every use. */
import { afterEach, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runtimeCacheDir, runtimeTarball, withRetries, type FetchDeps } from "../../scripts/bun-runtime.ts";
import { removeDir, tempDir } from "../harness.ts";

const bytes = "the runtime's tarball";
const pkg = { package: "@oven/bun-linux-x64", integrity: `sha512-${createHash("sha512").update(bytes).digest("base64")}` };
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

/** A registry whose first `failures` answers are npm's EAI_AGAIN, then the package (`content`). */
function registry(failures: number, content = bytes) {
  const calls: string[] = [];
  const waits: number[] = [];
  const lines: string[] = [];
  const deps: FetchDeps = {
    pack: (spec, dir) => {
      calls.push(spec);
      if (calls.length <= failures) throw new Error("npm pack --json ... failed (1): npm error code EAI_AGAIN\nnpm error syscall getaddrinfo");
      writeFileSync(join(dir, "oven-bun-linux-x64-1.4.5.tgz"), content);
      return "oven-bun-linux-x64-1.4.5.tgz";
    },
    sleep: (ms) => void waits.push(ms),
    log: (line) => void lines.push(line),
  };
  return { deps, calls, waits, lines };
}

function cache(): string {
  const dir = tempDir("beaker-runtime-cache-");
  dirs.push(dir);
  return dir;
}

test("a transient DNS failure is retried with backoff; the second build finds the runtime in the cache", () => {
  const dir = cache();
  const r = registry(2);
  const file = runtimeTarball(dir, pkg, "1.4.5", r.deps);
  expect(file).toBe(join(dir, "oven-bun-linux-x64-1.4.5.tgz"));
  expect(r.calls).toEqual(["@oven/bun-linux-x64@1.4.5", "@oven/bun-linux-x64@1.4.5", "@oven/bun-linux-x64@1.4.5"]);
  expect(r.waits).toEqual([1000, 2000]);
  expect(r.lines[0]).toBe("npm pack @oven/bun-linux-x64@1.4.5 failed (try 1 of 6), trying again in 1 s: npm pack --json ... failed (1): npm error code EAI_AGAIN");
  const again = registry(0);
  expect(runtimeTarball(dir, pkg, "1.4.5", again.deps)).toBe(file);
  expect(again.calls).toEqual([]);
  expect(readdirSync(dir)).toEqual(["oven-bun-linux-x64-1.4.5.tgz"]);
});

test("a cached copy that no longer matches the pinned integrity is fetched again", () => {
  const dir = cache();
  writeFileSync(join(dir, "oven-bun-linux-x64-1.4.5.tgz"), "bytes flipped on disk");
  const r = registry(0);
  runtimeTarball(dir, pkg, "1.4.5", r.deps);
  expect(r.calls).toHaveLength(1);
  expect(r.lines[0]).toMatch(/is not the pinned @oven\/bun-linux-x64@1\.4\.5 \(integrity sha512-/);
});

test("a registry that keeps failing ends the build with one line after the last try; a wrong package is refused, not cached", () => {
  const dir = cache();
  const down = registry(100);
  expect(() => runtimeTarball(dir, pkg, "1.4.5", down.deps)).toThrow("npm pack @oven/bun-linux-x64@1.4.5 failed 6 times; the last: npm pack --json ... failed (1): npm error code EAI_AGAIN");
  expect(down.waits).toEqual([1000, 2000, 4000, 8000, 16000]);
  const wrong = registry(0, "another tarball");
  expect(() => runtimeTarball(dir, pkg, "1.4.5", wrong.deps)).toThrow(/integrity sha512-\S+ does not match the pinned sha512-/);
  expect(wrong.calls).toHaveLength(1);
  expect(existsSync(join(dir, "oven-bun-linux-x64-1.4.5.tgz"))).toBe(false);
  expect(readdirSync(dir)).toEqual([]);
});

test("withRetries returns the first success; the cache lives outside the clone", () => {
  let n = 0;
  expect(withRetries("x", () => ++n, { sleep: () => {}, log: () => {} })).toBe(1);
  expect(runtimeCacheDir({ HOME: "/home/a" })).toBe("/home/a/.cache/beaker/bun-runtimes");
  expect(runtimeCacheDir({ HOME: "/home/a", XDG_CACHE_HOME: "/var/cache/a" })).toBe("/var/cache/a/beaker/bun-runtimes");
  expect(runtimeCacheDir({ HOME: "/home/a", BEAKER_RUNTIME_CACHE: "/var/cache/beaker-test" })).toBe("/var/cache/beaker-test");
});
