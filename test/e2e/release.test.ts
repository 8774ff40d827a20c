/** `bun run release`: six standalone binaries (Linux and macOS) built offline from the @oven/bun-* packages, checksums, a signed manifest. */
import { afterAll, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { removeDir, repoRoot, scopedDir, tempDir } from "../harness.ts";
import { makeReleaseKeys } from "../release-keys.ts";
import { parseManifest, verifySignature } from "../../src/update/manifest.ts";

const out = tempDir("beaker-release-");

/** The load commands of a 64-bit little-endian Mach-O file: Apple Silicon runs only binaries with a code signature (0x1d). */
function machOLoadCommands(path: string): number[] {
  const b = readFileSync(path);
  expect(b.readUInt32LE(0)).toBe(0xfeedfacf);
  const commands: number[] = [];
  for (let i = 0, offset = 32; i < b.readUInt32LE(16); i++, offset += b.readUInt32LE(offset + 4)) commands.push(b.readUInt32LE(offset));
  return commands;
}
afterAll(() => removeDir(out));

function sh(cmd: string[], cwd = repoRoot, env: Record<string, string> = {}) {
  const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

test("release builds every target with checksums and a signed manifest; each binary is the right kind and runs where it can", async () => {
  const keys = await makeReleaseKeys(out);
  const build = sh([process.execPath, "scripts/build.ts", "--release", "--out", join(out, "r"), "--version", "1.2.3"], repoRoot, {
    BEAKER_RELEASE_KEY_FILE: keys.privateKeyFile,
    BEAKER_RELEASE_PUBLIC_KEY: keys.publicKey,
  });
  expect(build.err).toBe("");
  expect(build.code).toBe(0);
  const dir = join(out, "r", "stable", "1.2.3");
  const targets = ["linux-x64", "linux-x64-baseline", "linux-arm64", "linux-x64-musl", "darwin-arm64", "darwin-x64"];
  expect(readdirSync(dir).sort()).toEqual(["SHA256SUMS", "manifest.json", "manifest.json.sig", ...targets.map((t) => `beaker-${t}`)].sort());
  const check = sh(["sha256sum", "-c", "SHA256SUMS"], dir);
  expect(check.code).toBe(0);
  expect(check.out.trim().split("\n")).toHaveLength(6);

  for (const manifestDir of [dir, join(out, "r", "stable")]) {
    const body = new Uint8Array(readFileSync(join(manifestDir, "manifest.json")));
    expect(await verifySignature(body, readFileSync(join(manifestDir, "manifest.json.sig"), "utf8"), keys.publicKey)).toBe(true);
    const manifest = parseManifest(new TextDecoder().decode(body));
    expect(manifest).toMatchObject({ version: "1.2.3", channel: "stable" });
    expect(Object.keys(manifest.targets).sort()).toEqual([...targets].sort());
    for (const [t, e] of Object.entries(manifest.targets)) {
      const bytes = readFileSync(join(manifestDir, e.file));
      expect(bytes.length).toBe(e.size);
      expect(new Bun.CryptoHasher("sha256").update(bytes).digest("hex")).toBe(e.sha256);
      expect(e.file).toEndWith(`beaker-${t}`);
    }
  }
  using otherDir = scopedDir("beaker-other-key-");
  const other = await makeReleaseKeys(otherDir.path);
  const body = new Uint8Array(readFileSync(join(dir, "manifest.json")));
  expect(await verifySignature(body, readFileSync(join(dir, "manifest.json.sig"), "utf8"), other.publicKey)).toBe(false);

  const kinds = Object.fromEntries(targets.map((t) => [t, sh(["file", "-b", join(dir, `beaker-${t}`)]).out]));
  expect(kinds["linux-x64"]).toMatch(/ELF 64-bit LSB executable, x86-64.*ld-linux-x86-64/);
  expect(kinds["linux-x64-baseline"]).toMatch(/ELF 64-bit LSB executable, x86-64/);
  expect(kinds["linux-arm64"]).toMatch(/ELF 64-bit LSB executable, ARM aarch64/);
  expect(kinds["linux-x64-musl"]).toMatch(/ELF 64-bit LSB executable, x86-64.*ld-musl-x86_64/);
  expect(kinds["darwin-arm64"]).toMatch(/^Mach-O 64-bit arm64 executable/);
  expect(kinds["darwin-x64"]).toMatch(/^Mach-O 64-bit x86_64 executable/);
  for (const t of ["darwin-arm64", "darwin-x64"]) expect(machOLoadCommands(join(dir, `beaker-${t}`))).toContain(0x1d);

  expect(sh([join(dir, "beaker-linux-x64"), "--version"]).out).toMatch(/^beaker 1\.2\.3 \(\w+(-dirty)?, linux-x64\)\n$/);
  expect(sh([join(dir, "beaker-linux-x64-baseline"), "--version"]).out).toMatch(/, linux-x64-baseline\)\n$/);
  const arm = sh(["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu", join(dir, "beaker-linux-arm64"), "--version"]);
  expect(arm.out).toMatch(/^beaker 1\.2\.3 .*, linux-arm64\)\n$/);

  const unsigned = sh([process.execPath, "scripts/build.ts", "--release", "--out", join(out, "x"), "--targets", "linux-x64"], repoRoot, { BEAKER_RELEASE_KEY_FILE: "", BEAKER_RELEASE_KEY: "" });
  expect(unsigned.code).not.toBe(0);
  expect(unsigned.err).toContain("set BEAKER_RELEASE_KEY_FILE");
}, 300_000);
