/** `bun run release`: four standalone binaries built offline from the @oven/bun-* packages, and SHA256SUMS. */
import { afterAll, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { removeDir, repoRoot, tempDir } from "../harness.ts";

const out = tempDir("beaker-release-");
afterAll(() => removeDir(out));

function sh(cmd: string[], cwd = repoRoot) {
  const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

test("release builds every target with checksums; each binary is the right kind and runs where it can", () => {
  const build = sh([process.execPath, "scripts/build.ts", "--release", "--out", out]);
  expect(build.err).toBe("");
  expect(build.code).toBe(0);
  const targets = ["linux-x64", "linux-x64-baseline", "linux-arm64", "linux-x64-musl"];
  expect(readdirSync(out).sort()).toEqual(["SHA256SUMS", ...targets.map((t) => `beaker-${t}`)].sort());
  const check = sh(["sha256sum", "-c", "SHA256SUMS"], out);
  expect(check.code).toBe(0);
  expect(check.out.trim().split("\n")).toHaveLength(4);

  const kinds = Object.fromEntries(targets.map((t) => [t, sh(["file", "-b", join(out, `beaker-${t}`)]).out]));
  expect(kinds["linux-x64"]).toMatch(/ELF 64-bit LSB executable, x86-64.*ld-linux-x86-64/);
  expect(kinds["linux-x64-baseline"]).toMatch(/ELF 64-bit LSB executable, x86-64/);
  expect(kinds["linux-arm64"]).toMatch(/ELF 64-bit LSB executable, ARM aarch64/);
  expect(kinds["linux-x64-musl"]).toMatch(/ELF 64-bit LSB executable, x86-64.*ld-musl-x86_64/);

  expect(sh([join(out, "beaker-linux-x64"), "--version"]).out).toMatch(/^beaker \S+ \(\w+(-dirty)?, linux-x64\)\n$/);
  expect(sh([join(out, "beaker-linux-x64-baseline"), "--version"]).out).toMatch(/, linux-x64-baseline\)\n$/);
  const arm = sh(["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu", join(out, "beaker-linux-arm64"), "--version"]);
  expect(arm.out).toMatch(/, linux-arm64\)\n$/);
}, 240_000);
