/** Shared test helpers: paths, temp dirs, fake nvidia-smi scenarios, running the compiled binary. */
import { chmodSync, copyFileSync, existsSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const repoRoot = resolve(import.meta.dir, "..");
/** Real nvidia-smi recordings, with their sources in PROVENANCE.md. */
export const fixtureDir = resolve(repoRoot, "test/fixtures/nvidia-smi");
export const beakerBinary = resolve(repoRoot, "dist/beaker");
export const fakeNvidiaSmi = resolve(repoRoot, "test/fixtures/bin/fake-nvidia-smi");

export function fixture(name: string): string {
  const path = join(fixtureDir, name);
  if (!existsSync(path)) throw new Error(`missing fixture ${path}`);
  return path;
}

export function tempDir(prefix = "beaker-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface Recording {
  /** A fixture path to replay on stdout, or literal text. */
  out?: { file: string } | string;
  err?: string;
  rc?: number;
  sleep?: number;
  /** A utilization script: one line per call (the last repeats), per GPU "U" or "U/M" (MiB in use) or "-". */
  util?: string[];
}

/** A folder holding an `nvidia-smi` that replays the given recordings, keyed like "q_x" and "L". */
export function makeNvidiaSmiScenario(recordings: Record<string, Recording>): { dir: string; executable: string } {
  const dir = tempDir("beaker-smi-");
  const executable = join(dir, "nvidia-smi");
  copyFileSync(fakeNvidiaSmi, executable);
  chmodSync(executable, 0o755);
  for (const [key, r] of Object.entries(recordings)) {
    if (typeof r.out === "string") writeFileSync(join(dir, `${key}.out`), r.out);
    else if (r.out) symlinkSync(r.out.file, join(dir, `${key}.out`));
    if (r.err !== undefined) writeFileSync(join(dir, `${key}.err`), r.err);
    if (r.rc !== undefined) writeFileSync(join(dir, `${key}.rc`), String(r.rc));
    if (r.sleep !== undefined) writeFileSync(join(dir, `${key}.sleep`), String(r.sleep));
    if (r.util !== undefined) setUtilization(dir, r.util, key);
  }
  return { dir, executable };
}

/** Replaces a scenario's utilization script; the next call plays its first line. */
export function setUtilization(dir: string, lines: string[], key = "q_x"): void {
  writeFileSync(join(dir, `.${key}.util`), `${lines.join("\n")}\n`);
  renameSync(join(dir, `.${key}.util`), join(dir, `${key}.util`));
  rmSync(join(dir, `${key}.calls`), { force: true });
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function runBeaker(
  args: string[],
  options: { env?: Record<string, string | undefined>; stdin?: string; cwd?: string } = {},
): Promise<RunResult> {
  const proc = Bun.spawn([beakerBinary, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env },
    cwd: options.cwd,
    stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { exitCode, stdout, stderr };
}
