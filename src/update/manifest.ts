import { existsSync, readFileSync } from "node:fs";
import { UpdateError } from "../errors.ts";
import { isVersion } from "./semver.ts";

/** What a release says of itself; signed as a whole (manifest.json.sig holds the Ed25519 signature, base64). */
export interface ReleaseManifest {
  version: string;
  channel: string;
  date: string;
  /** Per target: the file (relative to the manifest's URL), its size and SHA-256 (hex). */
  targets: Record<string, { file: string; size: number; sha256: string }>;
}

/** Checks the shape of a verified manifest. Pure. */
export function parseManifest(text: string): ReleaseManifest {
  let m: ReleaseManifest;
  try {
    m = JSON.parse(text) as ReleaseManifest;
  } catch {
    throw new UpdateError("the release manifest is not valid JSON");
  }
  const ok =
    typeof m?.version === "string" &&
    isVersion(m.version) &&
    typeof m.channel === "string" &&
    typeof m.targets === "object" &&
    Object.values(m.targets ?? {}).every((t) => typeof t.file === "string" && !t.file.includes("..") && Number.isInteger(t.size) && t.size > 0 && /^[0-9a-f]{64}$/.test(t.sha256));
  if (!ok) throw new UpdateError("the release manifest is malformed");
  return m;
}

/** Verifies the manifest's bytes against its signature with the release key built into this binary. */
export async function verifySignature(manifest: Uint8Array<ArrayBuffer>, signatureBase64: string, publicKeyBase64: string): Promise<boolean> {
  try {
    const key = await crypto.subtle.importKey("raw", Buffer.from(publicKeyBase64, "base64"), { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify("Ed25519", key, Buffer.from(signatureBase64.trim(), "base64"), manifest);
  } catch {
    return false;
  }
}

/** Signs with a PKCS#8 Ed25519 private key, PEM (as `openssl genpkey -algorithm ed25519` writes it) or base64 DER. */
export async function signManifest(manifest: Uint8Array<ArrayBuffer>, privateKey: string): Promise<string> {
  const der = Buffer.from(privateKey.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
  const key = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"]);
  return Buffer.from(await crypto.subtle.sign("Ed25519", key, manifest)).toString("base64");
}

export interface Platform {
  /** `process.platform`; Linux when left out. */
  os?: string;
  arch: string;
  musl: boolean;
  avx2: boolean;
}

/** The release this machine should run: a Mac's, else arm64, musl, or x64 (baseline on CPUs without AVX2). Pure. */
export function pickTarget(p: Platform): string {
  if (p.os === "darwin") return p.arch === "arm64" ? "darwin-arm64" : "darwin-x64";
  if (p.arch === "arm64") return "linux-arm64";
  if (p.musl) return "linux-x64-musl";
  return p.avx2 ? "linux-x64" : "linux-x64-baseline";
}

/** This machine's platform; `fs` reads files and asks whether they exist (a test's stand-in for the machine's). */
export function detectPlatform(fs: { read: (path: string) => string; exists: (path: string) => boolean } = { read: (path) => readFileSync(path, "utf8"), exists: existsSync }): Platform {
  let avx2 = true;
  try {
    avx2 = /\bavx2\b/.test(fs.read("/proc/cpuinfo"));
  } catch {}
  const musl = fs.exists("/etc/alpine-release") || (fs.exists("/lib/ld-musl-x86_64.so.1") && !fs.exists("/lib64/ld-linux-x86-64.so.2"));
  return { os: process.platform, arch: process.arch, musl, avx2 };
}
