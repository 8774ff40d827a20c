/**
 * The Bun runtime a release embeds for another target: the npm package's tarball, kept in a cache outside the clone
 * (so a fresh clone, and every later run, finds it) and checked against the integrity pinned in
 * scripts/bun-targets.json each time it is used. The registry is asked only when the cache lacks a good copy, and a
 * transient failure there (a DNS hiccup: EAI_AGAIN) is retried with backoff; each failure says which try it was.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export interface RuntimePackage {
  package: string;
  integrity: string;
}

export interface FetchDeps {
  /** `npm pack PACKAGE@VERSION` into `dir`; returns the tarball's file name there. Throws when npm fails. */
  pack(spec: string, dir: string): string;
  /** Waits between tries (the backoff); tests pass one that only records. */
  sleep(ms: number): void;
  log(line: string): void;
}

/** Tries, and the first wait (doubled after each failure): 1 + 2 + 4 + 8 + 16 s before the sixth and last try. */
export const retry = { tries: 6, firstWaitMs: 1000 };

/** BEAKER_RUNTIME_CACHE, else $XDG_CACHE_HOME/beaker/bun-runtimes, else ~/.cache/beaker/bun-runtimes. */
export function runtimeCacheDir(env: Record<string, string | undefined>): string {
  if (env.BEAKER_RUNTIME_CACHE) return env.BEAKER_RUNTIME_CACHE;
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache"), "beaker", "bun-runtimes");
}

/** npm's integrity string of a file (`sha512-<base64>`). */
export function integrityOf(file: string): string {
  return `sha512-${createHash("sha512").update(readFileSync(file)).digest("base64")}`;
}

/** Runs `attempt` until it returns, waiting longer after each failure; the last failure names every try. */
export function withRetries<T>(what: string, attempt: () => T, deps: Pick<FetchDeps, "sleep" | "log">, policy = retry): T {
  let wait = policy.firstWaitMs;
  for (let i = 1; ; i++) {
    try {
      return attempt();
    } catch (err) {
      const why = (err as Error).message.split("\n")[0];
      if (i === policy.tries) throw new Error(`${what} failed ${policy.tries} times; the last: ${why}`);
      deps.log(`${what} failed (try ${i} of ${policy.tries}), trying again in ${wait / 1000} s: ${why}`);
      deps.sleep(wait);
      wait *= 2;
    }
  }
}

/** The verified tarball of `pkg` at `version` in `cache`: the cached one when its integrity holds, else fetched. */
export function runtimeTarball(cache: string, pkg: RuntimePackage, version: string, deps: FetchDeps): string {
  const file = join(cache, `${pkg.package.replace(/^@/, "").replace("/", "-")}-${version}.tgz`);
  if (existsSync(file)) {
    const found = integrityOf(file);
    if (found === pkg.integrity) return file;
    deps.log(`${file} is not the pinned ${pkg.package}@${version} (integrity ${found}): fetching it again`);
    rmSync(file, { force: true });
  }
  mkdirSync(cache, { recursive: true });
  const spec = `${pkg.package}@${version}`;
  const tmp = mkdtempSync(join(cache, ".fetch-"));
  try {
    const name = withRetries(`npm pack ${spec}`, () => deps.pack(spec, tmp), deps);
    const got = integrityOf(join(tmp, name));
    if (got !== pkg.integrity) throw new Error(`${spec} integrity ${got} does not match the pinned ${pkg.integrity}; update scripts/bun-targets.json deliberately`);
    // Renamed into place whole: a build beside this one sees the old state or the verified file, never half of one.
    renameSync(join(tmp, name), file);
    return file;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
