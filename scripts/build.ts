#!/usr/bin/env bun
/**
 * Builds the beaker binary.
 *   bun run build              dist/beaker for this machine
 *   bun run release [--out D] [--channel stable|canary] [--targets linux-x64,...]
 *       D/<channel>/<version>/beaker-<target> for every Linux and macOS target, SHA256SUMS and manifest.json, and
 *       D/<channel>/manifest.json (the channel's newest); each manifest signed with Ed25519 into manifest.json.sig.
 *       The private key comes from BEAKER_RELEASE_KEY_FILE (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519`
 *       writes it) or BEAKER_RELEASE_KEY; it is never committed.
 * Both take --version V (default: package.json). Binaries trust the public key in release-key.pub, or the
 * base64 raw key in BEAKER_RELEASE_PUBLIC_KEY (tests build binaries that trust their own key).
 * Release runtimes come from the @oven/bun-* npm packages of this Bun version (fetched with `npm pack`, retried with
 * backoff, kept in ~/.cache/beaker/bun-runtimes or BEAKER_RUNTIME_CACHE, and checked against the integrity pinned in
 * scripts/bun-targets.json at every use), so Bun's own cross-compile download is never used.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { signManifest, type ReleaseManifest } from "../src/update/manifest.ts";
import { runtimeCacheDir, runtimeTarball } from "./bun-runtime.ts";
import { hostTarget } from "./host-target.ts";
import { isVersion } from "../src/update/semver.ts";

const root = resolve(import.meta.dir, "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
const targets = JSON.parse(readFileSync(join(root, "scripts/bun-targets.json"), "utf8")) as Record<
  string,
  { bunTarget: string; package: string; integrity: string }
>;
delete targets["//"];

const args = process.argv.slice(2);
const release = args.includes("--release");
const outDir = resolve(root, valueOf("--out") ?? (release ? "dist/release" : "dist"));
const version = valueOf("--version") ?? pkg.version;
const channel = valueOf("--channel") ?? "stable";
const onlyTargets = valueOf("--targets")?.split(",");
const publicKey = process.env.BEAKER_RELEASE_PUBLIC_KEY ?? readFileSync(join(root, "release-key.pub"), "utf8").trim();
if (!isVersion(version)) throw new Error(`--version ${version} is not a semantic version`);
if (!/^[a-z][a-z0-9-]*$/.test(channel)) throw new Error(`--channel ${channel} is not a channel name`);

function valueOf(flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i === -1 ? undefined : args[i + 1];
}

function run(cmd: string[], cwd = root, timeoutMs = 0): string {
  const result = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe", ...(timeoutMs ? { timeout: timeoutMs } : {}) });
  if (result.exitCode !== 0) {
    const why = result.exitCode === null ? `did not finish within ${timeoutMs / 1000} s` : `failed (${result.exitCode})`;
    throw new Error(`${cmd.join(" ")} ${why}: ${result.stderr.toString().trim()}`);
  }
  return result.stdout.toString().trim();
}

function gitCommit(): string {
  const result = Bun.spawnSync(["git", "rev-parse", "--short=7", "HEAD"], { cwd: root, stdout: "pipe", stderr: "ignore" });
  const sha = result.exitCode === 0 ? result.stdout.toString().trim() : "unknown";
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--untracked-files=no"], { cwd: root, stdout: "pipe" });
  return sha !== "unknown" && dirty.stdout.toString().trim() !== "" ? `${sha}-dirty` : sha;
}

/** The Bun runtime of one target, from the verified tarball in the runtime cache (scripts/bun-runtime.ts); its `bun`. */
function runtimeFor(target: string): string {
  const spec = targets[target]!;
  const bunVersion = run([process.execPath, "--version"]);
  const dir = join(root, ".cache", "bun-runtimes", `${target}-${bunVersion}`);
  const executable = join(dir, "package", "bin", "bun");
  if (existsSync(executable)) return executable;
  const tarball = runtimeTarball(runtimeCacheDir(process.env), spec, bunVersion, {
    // npm's own cache is used without asking the registry again when it holds the package; a registry that stalls
    // ends the try with a line instead of holding it forever.
    pack: (pkg, into) => (JSON.parse(run(["npm", "pack", "--json", "--prefer-offline", pkg, "--pack-destination", into], root, 180_000)) as Array<{ filename: string }>)[0]!.filename,
    sleep: (ms) => Bun.sleepSync(ms),
    log: (line) => console.error(line),
  });
  // Unpacked beside its place and renamed into it: a build killed midway leaves no half runtime to be taken as whole.
  const unpacking = `${dir}.unpacking-${process.pid}`;
  rmSync(unpacking, { recursive: true, force: true });
  mkdirSync(unpacking, { recursive: true });
  run(["tar", "-xzf", tarball, "-C", unpacking]);
  rmSync(dir, { recursive: true, force: true });
  renameSync(unpacking, dir);
  return executable;
}

/**
 * dockerode loads BuildKit's gRPC session code and docker-modem loads ssh2 for ssh:// hosts on first import; Beaker uses
 * neither (it builds no images and talks to a local socket), and together they cost the executor about 20 MB of
 * memory. They are replaced in the bundle by modules that fail clearly if ever reached.
 */
const slimDockerode: import("bun").BunPlugin = {
  name: "slim-dockerode",
  setup(build) {
    build.onResolve({ filter: /^\.\/(session|ssh)$/ }, (args) => {
      if (args.path === "./session" && /dockerode[\\/]lib[\\/]docker\.js$/.test(args.importer)) return { path: "BuildKit sessions", namespace: "unused" };
      if (args.path === "./ssh" && /docker-modem[\\/]lib[\\/]modem\.js$/.test(args.importer)) return { path: "ssh:// Docker hosts", namespace: "unused" };
      return undefined;
    });
    build.onLoad({ filter: /.*/, namespace: "unused" }, (args) => ({
      contents: `module.exports = function () { throw new Error(${JSON.stringify(`${args.path} are not supported by beaker`)}); };`,
      loader: "js",
    }));
  },
};

async function compile(target: string, outfile: string, executablePath?: string): Promise<void> {
  const result = await Bun.build({
    entrypoints: ["src/main.ts"],
    compile: {
      target: targets[target]!.bunTarget as import("bun").Build.CompileTarget,
      outfile,
      autoloadDotenv: false,
      autoloadBunfig: false,
      // JavaScriptCore compiles hot code only after 1,000 times its usual number of runs. The CLI runs each function a
      // few times and exits, and the executor's JavaScript only orchestrates Docker: compiling it cost more than it
      // saved (bench/session: executor peak RSS 79 -> 61 MB with less CPU, CLI 45 -> 43 MB). Long-running commands
      // whose JavaScript does the work set the usual policy back (src/util/jit.ts).
      jitPolicy: 1000,
      ...(executablePath ? { executablePath } : {}),
    },
    minify: true,
    bytecode: true,
    define: {
      BEAKER_VERSION: JSON.stringify(version),
      BEAKER_COMMIT: JSON.stringify(gitCommit()),
      BEAKER_TARGET: JSON.stringify(target),
      BEAKER_RELEASE_PUBLIC_KEY: JSON.stringify(publicKey),
      BEAKER_DEFAULT_UPDATE_URL: JSON.stringify(process.env.BEAKER_DEFAULT_UPDATE_URL ?? ""),
    },
    plugins: [slimDockerode],
    throw: false,
  });
  if (!result.success) {
    for (const log of result.logs) console.error(String(log));
    throw new Error(`building ${outfile} failed`);
  }
}

function releaseKey(): string {
  const file = process.env.BEAKER_RELEASE_KEY_FILE;
  const key = file ? readFileSync(file, "utf8") : process.env.BEAKER_RELEASE_KEY;
  if (!key) throw new Error("a release is signed: set BEAKER_RELEASE_KEY_FILE (or BEAKER_RELEASE_KEY) to the Ed25519 private key");
  return key;
}

async function writeSigned(dir: string, manifest: ReleaseManifest, key: string): Promise<void> {
  const body = new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(join(dir, "manifest.json"), body);
  writeFileSync(join(dir, "manifest.json.sig"), `${await signManifest(body, key)}\n`);
}

if (!release) {
  mkdirSync(outDir, { recursive: true });
  const target = hostTarget();
  await compile(target, join(outDir, "beaker"));
  console.log(`built ${join(outDir, "beaker")} (${version}, ${target})`);
} else {
  const key = releaseKey();
  const channelDir = join(outDir, channel);
  const versionDir = join(channelDir, version);
  mkdirSync(versionDir, { recursive: true });
  const sums: string[] = [];
  const manifest: ReleaseManifest = { version, channel, date: new Date().toISOString(), targets: {} };
  for (const target of Object.keys(targets).filter((t) => !onlyTargets || onlyTargets.includes(t))) {
    const name = `beaker-${target}`;
    await compile(target, join(versionDir, name), runtimeFor(target));
    const bytes = readFileSync(join(versionDir, name));
    const digest = createHash("sha256").update(bytes).digest("hex");
    sums.push(`${digest}  ${name}`);
    manifest.targets[target] = { file: name, size: bytes.length, sha256: digest };
    console.log(`built ${join(versionDir, name)}`);
  }
  writeFileSync(join(versionDir, "SHA256SUMS"), `${sums.join("\n")}\n`);
  await writeSigned(versionDir, manifest, key);
  // The channel's newest: the same release, its files named from the channel folder.
  const latest = { ...manifest, targets: Object.fromEntries(Object.entries(manifest.targets).map(([t, e]) => [t, { ...e, file: `${version}/${e.file}` }])) };
  await writeSigned(channelDir, latest, key);
  console.log(`wrote ${join(versionDir, "manifest.json")} and ${join(channelDir, "manifest.json")} (signed)`);
}
