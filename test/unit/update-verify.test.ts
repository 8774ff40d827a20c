/**
 * What `beaker upgrade` refuses before anything is installed: a signed manifest for another channel or another pinned
 * version than asked, a manifest signed by another key, and a download whose size or SHA-256 is not the manifest's.
 * A local HTTP server plays the release server.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UpdateError } from "../../src/errors.ts";
import { downloadVerified } from "../../src/update/download.ts";
import { signManifest } from "../../src/update/manifest.ts";
import { fetchManifest } from "../../src/update/upgrade.ts";
import { makeReleaseKeys } from "../release-keys.ts";

const dir = mkdtempSync(join(tmpdir(), "beaker-update-verify-"));
const files = new Map<string, Uint8Array>();
let server: ReturnType<typeof Bun.serve>;
let base = "";
let keys: { privateKeyFile: string; publicKey: string };
let otherKeys: { privateKeyFile: string; publicKey: string };

const binary = new TextEncoder().encode("#!/bin/sh\necho beaker 9.9.9 (test)\n");
const binarySha = createHash("sha256").update(binary).digest("hex");

/** Serves a manifest at `path` (channel folder), signed with `keyFile`. */
async function publish(path: string, manifest: object, keyFile: string) {
  const body = new TextEncoder().encode(JSON.stringify(manifest));
  files.set(path, body);
  files.set(`${path}.sig`, new TextEncoder().encode(await signManifest(body, readFileSync(keyFile, "utf8"))));
}
const manifestFor = (channel: string, version: string) => ({ version, channel, date: "2026-12-01", targets: { "linux-x64": { file: "beaker-linux-x64", size: binary.length, sha256: binarySha } } });

beforeAll(async () => {
  keys = await makeReleaseKeys(dir);
  const otherDir = mkdtempSync(join(dir, "other-"));
  otherKeys = await makeReleaseKeys(otherDir);
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req) {
      const body = files.get(new URL(req.url).pathname);
      return body ? new Response(body) : new Response("not found", { status: 404 });
    },
  });
  base = `http://127.0.0.1:${server.port}`;
  // The stable channel's manifest path serves one that says it is canary's; 1.2.3's path serves 1.2.4.
  await publish("/stable/manifest.json", manifestFor("canary", "1.2.4"), keys.privateKeyFile);
  await publish("/stable/1.2.3/manifest.json", manifestFor("stable", "1.2.4"), keys.privateKeyFile);
  await publish("/canary/manifest.json", manifestFor("canary", "1.2.4"), keys.privateKeyFile);
  await publish("/canary/1.2.4/manifest.json", manifestFor("canary", "1.2.4"), keys.privateKeyFile);
  await publish("/forged/manifest.json", manifestFor("forged", "1.2.4"), otherKeys.privateKeyFile);
  files.set("/bin/right", binary);
  files.set("/bin/tampered", binary.map((b, i) => (i === 3 ? b ^ 1 : b)));
  files.set("/bin/short", binary.slice(0, -1));
  files.set("/bin/long", new Uint8Array([...binary, 10]));
});
afterAll(() => {
  server?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

describe("the manifest", () => {
  test("a signed manifest of another channel than asked is refused", async () => {
    const err = await fetchManifest(base, "stable", null, keys.publicKey).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpdateError);
    expect((err as Error).message).toContain("is for canary 1.2.4");
  });
  test("a signed manifest of another version than the one pinned is refused", async () => {
    const err = await fetchManifest(base, "stable", "1.2.3", keys.publicKey).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpdateError);
    expect((err as Error).message).toContain("is for stable 1.2.4");
  });
  test("the channel's and the pinned version's own manifests are taken", async () => {
    expect((await fetchManifest(base, "canary", null, keys.publicKey)).manifest.version).toBe("1.2.4");
    expect((await fetchManifest(base, "canary", "1.2.4", keys.publicKey)).manifest.channel).toBe("canary");
  });
  test("a manifest signed with another key is refused", async () => {
    const err = await fetchManifest(base, "forged", null, keys.publicKey).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpdateError);
    expect((err as Error).message).toContain("signature does not verify");
  });
});

describe("the download", () => {
  const expected = { size: binary.length, sha256: binarySha };
  test.each([
    ["/bin/tampered", "does not match the manifest's SHA-256"],
    ["/bin/short", `truncated: ${binary.length - 1} of ${binary.length} bytes`],
    ["/bin/long", `larger than the ${binary.length} bytes`],
    ["/bin/missing", "the server answered 404"],
  ])("%s is refused and nothing is left behind", async (path, why) => {
    const target = join(dir, `download-${path.replace(/\//g, "-")}`);
    const err = await downloadVerified(`${base}${path}`, target, expected, () => {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpdateError);
    expect((err as Error).message).toContain(why);
    expect(existsSync(target)).toBe(false);
  });
  test("the right bytes are kept, with progress up to the whole size", async () => {
    const target = join(dir, "download-right");
    const seen: number[] = [];
    await downloadVerified(`${base}/bin/right`, target, expected, (p) => seen.push(p.received));
    expect(new Uint8Array(readFileSync(target))).toEqual(binary);
    expect(seen.at(-1)).toBe(binary.length);
  });
  test("a file already there is never overwritten", async () => {
    const target = join(dir, "download-right");
    const err = await downloadVerified(`${base}/bin/right`, target, expected, () => {}).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe("EEXIST");
  });
});
