/** Shared test helpers: paths, temp dirs, node names, polling, fake nvidia-smi scenarios, running the compiled binary. */
import { chmodSync, copyFileSync, existsSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";

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

/** A temp dir removed when the block that holds it ends: `using dir = scopedDir()`, then `dir.path`. */
export function scopedDir(prefix = "beaker-test-"): { path: string } & Disposable {
  const path = tempDir(prefix);
  return { path, [Symbol.dispose]: () => removeDir(path) };
}

/**
 * Executors label their containers with their node name and clean up by it, so each test file (and each clone or
 * worktree of the repository) gets its own: one file's cleanup never removes another's sessions. scripts/test
 * exports the prefix so its check of the machine's engine can tell test containers from the machine's own.
 */
const nodePrefix = process.env.BEAKER_TEST_NODE_PREFIX ?? `bt${new Bun.CryptoHasher("sha256").update(repoRoot).digest("hex").slice(0, 6)}`;

/** The node name for a test file's executor (`import.meta.file`); `suffix` names a second executor in that file. */
export function testNodeName(file: string, suffix?: string): string {
  return [nodePrefix, basename(file).replace(/\.test\.ts$/, ""), suffix].filter(Boolean).join("-");
}

/**
 * Polls `check` until it returns something other than false, null or undefined, and without throwing; returns
 * that value. The only way tests wait: for observable state, never for a fixed time. On timeout it throws with
 * the last error or value, so the failure says what was seen; `detail` adds what else helps (a log's tail).
 */
export async function eventually<T>(
  check: () => T | Promise<T>,
  timeoutMs = 30_000,
  options: { intervalMs?: number; what?: string; detail?: () => string } = {},
): Promise<Exclude<T, false | null | undefined>> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== false && value !== null && value !== undefined) return value as Exclude<T, false | null | undefined>;
      last = value;
    } catch (err) {
      last = err;
    }
    if (performance.now() > deadline) {
      const seen = last instanceof Error ? last.message : Bun.inspect(last);
      const detail = options.detail ? `\n${options.detail()}` : "";
      throw new Error(`${options.what ?? "condition"} not reached within ${timeoutMs} ms; last: ${seen}${detail}`);
    }
    await Bun.sleep(options.intervalMs ?? 100);
  }
}

/**
 * `promise`, or, after `ms`, an error naming `what` and whatever `detail` then says: a step that stalls fails the test
 * with what it saw instead of running the test out of time.
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string, detail?: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms${detail ? `\n${detail()}` : ""}`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Ends a process this run started: `signal`, then SIGKILL when it has not exited within `graceMs` (said on stderr),
 * so no stop waits forever. Resolves once it has exited.
 */
export async function stopProcess(proc: { exitCode: number | null; signalCode?: unknown; kill(signal?: NodeJS.Signals): void; exited: Promise<unknown> }, what: string, signal: NodeJS.Signals = "SIGTERM", graceMs = 30_000): Promise<void> {
  if (proc.exitCode === null && !proc.signalCode) proc.kill(signal);
  try {
    await within(proc.exited, graceMs, `${what} to exit after ${signal}`);
  } catch (err) {
    console.error(`${(err as Error).message}: killing it`);
    proc.kill("SIGKILL");
    await within(proc.exited, 10_000, `${what} to exit after SIGKILL`);
  }
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
