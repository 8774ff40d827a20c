#!/usr/bin/env bun
/**
 * Builds the beaker binary.
 *   bun run build              dist/beaker for this machine
 *   bun run release [--out D]  dist/release/beaker-<target> for every Linux target, plus SHA256SUMS
 * Release runtimes come from the @oven/bun-* npm packages of this Bun version (fetched with `npm pack`, checked
 * against the integrity pinned in scripts/bun-targets.json), so Bun's own cross-compile download is never used.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

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

function valueOf(flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i === -1 ? undefined : args[i + 1];
}

function run(cmd: string[], cwd = root): string {
  const result = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) {
    throw new Error(`${cmd.join(" ")} failed (${result.exitCode}): ${result.stderr.toString().trim()}`);
  }
  return result.stdout.toString().trim();
}

function gitCommit(): string {
  const result = Bun.spawnSync(["git", "rev-parse", "--short=7", "HEAD"], { cwd: root, stdout: "pipe", stderr: "ignore" });
  const sha = result.exitCode === 0 ? result.stdout.toString().trim() : "unknown";
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--untracked-files=no"], { cwd: root, stdout: "pipe" });
  return sha !== "unknown" && dirty.stdout.toString().trim() !== "" ? `${sha}-dirty` : sha;
}

function hostTarget(): string {
  const arch = process.arch === "arm64" ? "arm64" : "x64";
  const musl = existsSync("/etc/alpine-release");
  return `linux-${arch}${musl ? "-musl" : ""}`;
}

/** Fetches and verifies the Bun runtime of one target; returns the path of its `bun` executable. */
function runtimeFor(target: string): string {
  const spec = targets[target]!;
  const bunVersion = run([process.execPath, "--version"]);
  const cache = join(root, ".cache", "bun-runtimes", `${target}-${bunVersion}`);
  const executable = join(cache, "package", "bin", "bun");
  if (existsSync(executable)) return executable;
  rmSync(cache, { recursive: true, force: true });
  mkdirSync(cache, { recursive: true });
  const packed = JSON.parse(run(["npm", "pack", "--json", `${spec.package}@${bunVersion}`, "--pack-destination", cache])) as Array<{
    filename: string;
    integrity: string;
  }>;
  const file = packed[0]!;
  if (file.integrity !== spec.integrity) {
    throw new Error(`${spec.package}@${bunVersion} integrity ${file.integrity} does not match the pinned ${spec.integrity}; update scripts/bun-targets.json deliberately`);
  }
  run(["tar", "-xzf", join(cache, file.filename), "-C", cache]);
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
      ...(executablePath ? { executablePath } : {}),
    },
    minify: true,
    bytecode: true,
    define: {
      BEAKER_VERSION: JSON.stringify(pkg.version),
      BEAKER_COMMIT: JSON.stringify(gitCommit()),
      BEAKER_TARGET: JSON.stringify(target),
    },
    plugins: [slimDockerode],
    throw: false,
  });
  if (!result.success) {
    for (const log of result.logs) console.error(String(log));
    throw new Error(`building ${outfile} failed`);
  }
}

mkdirSync(outDir, { recursive: true });
if (!release) {
  const target = hostTarget();
  await compile(target, join(outDir, "beaker"));
  console.log(`built ${join(outDir, "beaker")} (${pkg.version}, ${target})`);
} else {
  const sums: string[] = [];
  for (const target of Object.keys(targets)) {
    const name = `beaker-${target}`;
    await compile(target, join(outDir, name), runtimeFor(target));
    const digest = createHash("sha256").update(readFileSync(join(outDir, name))).digest("hex");
    sums.push(`${digest}  ${name}`);
    console.log(`built ${join(outDir, name)}`);
  }
  writeFileSync(join(outDir, "SHA256SUMS"), `${sums.join("\n")}\n`);
  console.log(`wrote ${join(outDir, "SHA256SUMS")}`);
}
