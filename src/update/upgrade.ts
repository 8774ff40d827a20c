import { randomBytes } from "node:crypto";
import { accessSync, constants, copyFileSync, existsSync, linkSync, renameSync, statSync, unlinkSync } from "node:fs";
import { tryFileLock } from "../config/lock.ts";
import { basename, dirname, join } from "node:path";
import { ConflictError, NotFoundError, UnavailableError, UpdateError } from "../errors.ts";
import { connectionFailure } from "../util/net.ts";
import { downloadVerified, type DownloadProgress } from "./download.ts";
import { parseManifest, verifySignature, type ReleaseManifest } from "./manifest.ts";
import { compareVersions } from "./semver.ts";

export interface UpgradeOptions {
  version: string | null;
  channel: string;
  dryRun: boolean;
  force: boolean;
}

export interface UpgradeContext {
  /** The binary to replace (this one, links resolved). */
  binary: string;
  currentVersion: string;
  target: string;
  publicKey: string;
  baseUrl: string;
  say: (line: string) => void;
  /** Asked once before anything is replaced; false stops with nothing changed. */
  confirm: (question: string) => Promise<boolean>;
  progress: (p: DownloadProgress, version: string) => void;
  done: () => void;
}

/** Fetches and verifies a channel's manifest (or one version's). Nothing is trusted before the signature checks. */
export async function fetchManifest(baseUrl: string, channel: string, version: string | null, publicKey: string, timeoutMs = 15_000): Promise<{ manifest: ReleaseManifest; url: string }> {
  const url = `${baseUrl.replace(/\/+$/, "")}/${channel}/${version ? `${version}/` : ""}manifest.json`;
  const get = async (u: string) => {
    let res: Response;
    try {
      res = await fetch(u, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw Object.assign(new UnavailableError(`cannot reach the update server: ${u}: ${connectionFailure(err)}`), { cause: err });
    }
    if (res.status === 404) throw new NotFoundError(version ? `no release ${version} in the ${channel} channel (${u})` : `no ${channel} channel at ${u}`);
    if (!res.ok) throw new UnavailableError(`the update server answered ${res.status} for ${u}`);
    try {
      return new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      throw Object.assign(new UnavailableError(`the update server broke off its answer for ${u}: ${connectionFailure(err)}`), { cause: err });
    }
  };
  const [body, signature] = await Promise.all([get(url), get(`${url}.sig`)]);
  if (!(await verifySignature(body, new TextDecoder().decode(signature), publicKey))) {
    throw new UpdateError(`the release manifest's signature does not verify against this beaker's release key: refusing it (${url})`);
  }
  const manifest = parseManifest(new TextDecoder().decode(body));
  if (manifest.channel !== channel || (version && manifest.version !== version)) throw new UpdateError(`the manifest at ${url} is for ${manifest.channel} ${manifest.version}`);
  return { manifest, url };
}

/**
 * Refuses, before anything is downloaded, a binary the caller cannot replace, with the command that can.
 * Replacing needs the right to create and rename files in its folder (not to write the running file).
 */
export function checkReplaceable(binary: string, command: string): void {
  if (binary.startsWith("/nix/store/")) throw new UpdateError(`${binary} is managed by Nix: upgrade it there`);
  if (/^\/(usr\/)?s?bin\//.test(binary)) {
    const owner = Bun.spawnSync(["dpkg-query", "-S", binary], { stdout: "pipe", stderr: "ignore" });
    if (owner.exitCode === 0) throw new UpdateError(`${binary} belongs to the Debian package ${owner.stdout.toString().split(":")[0]}: upgrade it with apt`);
  }
  const dir = dirname(binary);
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EROFS") throw new UpdateError(`${binary} is on a read-only filesystem: it cannot be upgraded in place`);
    const owner = statSync(dir).uid === 0 ? "root" : `uid ${statSync(dir).uid}`;
    throw new UpdateError(`cannot replace ${binary}: ${dir} is owned by ${owner} and not writable by you; run: sudo ${command}`);
  }
}

/** One upgrade (or rollback) per binary at a time: a lock file beside it, taken over only from a dead owner. */
export function lockBeside(binary: string): () => void {
  const lock = tryFileLock(join(dirname(binary), `.${basename(binary)}.upgrade.lock`));
  if ("release" in lock) return lock.release;
  if (Number.isNaN(lock.heldBy)) throw new ConflictError("could not take the upgrade lock");
  throw new ConflictError(`another beaker upgrade is running (pid ${lock.heldBy}); try again when it is done`);
}

/** Runs `file --version` and returns what it printed; throws when it does not run. */
export function smokeRun(file: string): string {
  const r = Bun.spawnSync([file, "--version"], { stdout: "pipe", stderr: "pipe", timeout: 15_000, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
  if (r.exitCode !== 0) throw new UpdateError(`${file} did not run (exit ${r.exitCode ?? "killed"}): ${r.stderr.toString().trim().split("\n")[0] ?? ""}`);
  return r.stdout.toString().trim();
}

/** `beaker.old` beside the binary gets the current file (a hard link: the same bytes, no copy, no window). */
function keepAsOld(binary: string): string {
  const old = `${binary}.old`;
  const tmp = join(dirname(binary), `.${basename(binary)}.old-${randomBytes(4).toString("hex")}`);
  try {
    linkSync(binary, tmp);
  } catch {
    copyFileSync(binary, tmp);
  }
  renameSync(tmp, old);
  return old;
}

/** The ordered pipeline: manifest -> decide -> check -> download and verify -> smoke-run -> keep old -> rename. */
/** Returns the version installed, or null when nothing changed. */
export async function runUpgrade(options: UpgradeOptions, ctx: UpgradeContext): Promise<string | null> {
  const { manifest, url } = await fetchManifest(ctx.baseUrl, options.channel, options.version, ctx.publicKey);
  const entry = manifest.targets[ctx.target];
  if (!entry) throw new UpdateError(`release ${manifest.version} has no build for ${ctx.target}`);
  const order = compareVersions(manifest.version, ctx.currentVersion);
  if (order === 0 && !options.force) {
    ctx.say(`beaker ${ctx.currentVersion} is up to date (${options.channel})`);
    return null;
  }
  if (order < 0 && !options.version && !options.force) {
    ctx.say(`the ${options.channel} channel's newest is ${manifest.version}, older than this beaker (${ctx.currentVersion}); nothing to do (--force installs it)`);
    return null;
  }
  ctx.say(`beaker ${ctx.currentVersion} -> ${manifest.version} (${options.channel}, ${ctx.target}, ${(entry.size / 1e6).toFixed(1)} MB) at ${ctx.binary}`);
  if (options.dryRun) {
    ctx.say("dry run: nothing changed");
    return null;
  }
  checkReplaceable(ctx.binary, "beaker upgrade");
  if (!(await ctx.confirm(`Replace ${ctx.binary} with ${manifest.version}?`))) {
    ctx.say("nothing changed");
    return null;
  }
  const unlock = lockBeside(ctx.binary);
  const download = join(dirname(ctx.binary), `.${basename(ctx.binary)}.download-${randomBytes(4).toString("hex")}`);
  try {
    try {
      await downloadVerified(new URL(entry.file, url).toString(), download, entry, (p) => ctx.progress(p, manifest.version));
    } finally {
      ctx.done();
    }
    let printed: string;
    try {
      printed = smokeRun(download);
    } catch (err) {
      throw new UpdateError(`the downloaded ${manifest.version} does not run here, so it was not installed: ${(err as Error).message}`);
    }
    if (!printed.startsWith(`beaker ${manifest.version} `)) throw new UpdateError(`the downloaded binary says "${printed}", not ${manifest.version}: not installed`);
    const old = keepAsOld(ctx.binary);
    renameSync(download, ctx.binary);
    ctx.say(`upgraded to ${manifest.version}; the previous beaker is kept as ${old} (undo: beaker upgrade --rollback)`);
    return manifest.version;
  } finally {
    if (existsSync(download)) unlinkSync(download);
    unlock();
  }
}

/** Swaps `beaker.old` back in (and keeps the one it replaces as `beaker.old`, so a second rollback undoes the first). */
export async function runRollback(ctx: Pick<UpgradeContext, "binary" | "currentVersion" | "say" | "confirm">): Promise<void> {
  const old = `${ctx.binary}.old`;
  if (!existsSync(old)) throw new NotFoundError(`there is no previous version to roll back to (${old} does not exist)`);
  checkReplaceable(ctx.binary, "beaker upgrade --rollback");
  const printed = smokeRun(old);
  const version = /^beaker (\S+)/.exec(printed)?.[1] ?? "?";
  if (!(await ctx.confirm(`Replace ${ctx.binary} (${ctx.currentVersion}) with the previous ${version}?`))) return ctx.say("nothing changed");
  const unlock = lockBeside(ctx.binary);
  try {
    const tmp = join(dirname(ctx.binary), `.${basename(ctx.binary)}.rollback-${randomBytes(4).toString("hex")}`);
    linkSync(ctx.binary, tmp);
    renameSync(old, ctx.binary);
    renameSync(tmp, old);
    ctx.say(`rolled back to ${version}; ${ctx.currentVersion} is kept as ${old}`);
  } finally {
    unlock();
  }
}

