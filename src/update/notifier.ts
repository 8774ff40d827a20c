import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../util/write-atomic.ts";
import { compareVersions } from "./semver.ts";

export interface UpdateState {
  /** When a background check last started (ms). */
  lastCheck: number;
  /** When the notice was last shown (ms). */
  lastNotice: number;
  /** The newest version the last check saw. */
  latest: string | null;
}

const day = 24 * 3600 * 1000;

export interface NotifierEnv {
  tty: boolean;
  ci: boolean;
  disabled: boolean;
}

/** Whether to look for a new release now: on a terminal, not in CI, not disabled, at most once a day. Pure. */
export function shouldCheck(now: number, state: UpdateState | null, env: NotifierEnv): boolean {
  if (!env.tty || env.ci || env.disabled) return false;
  return !state || now - state.lastCheck >= day || now < state.lastCheck;
}

/** The notice to show now, if any: a newer version is known and it was not shown in the last day. Pure. */
export function noticeFor(now: number, current: string, state: UpdateState | null, env: NotifierEnv): string | null {
  if (!env.tty || env.ci || env.disabled || !state?.latest) return null;
  if (compareVersions(state.latest, current) <= 0 || now - state.lastNotice < day) return null;
  return `A new beaker is available: ${current} -> ${state.latest}. Run 'beaker upgrade' (BEAKER_NO_UPDATE_NOTIFIER=1 silences this).`;
}

export function statePath(home: string): string {
  return join(home, ".beaker", "update-state.json");
}

export function readStateFile(path: string): UpdateState | null {
  if (!existsSync(path)) return null;
  try {
    const s = JSON.parse(readFileSync(path, "utf8")) as UpdateState;
    return { lastCheck: Number(s.lastCheck) || 0, lastNotice: Number(s.lastNotice) || 0, latest: typeof s.latest === "string" ? s.latest : null };
  } catch {
    return null;
  }
}

export function writeStateFile(path: string, state: UpdateState): void {
  try {
    mkdirSync(join(path, ".."), { recursive: true, mode: 0o700 });
    writeFileAtomic(path, `${JSON.stringify(state)}\n`, 0o600);
  } catch {}
}

/** What the notifier reads and does, injected so a test runs the whole sequence with a fake clock and no files. */
export interface NotifierDeps {
  now(): number;
  readState(): UpdateState | null;
  writeState(state: UpdateState): void;
  /** Starts the background check, detached; null where there is none to start (beaker run from source). */
  spawnCheck: (() => void) | null;
  env: NotifierEnv;
  /** The running version. */
  current: string;
  /** Shows the notice (on stderr, after the command's own output). */
  show(text: string): void;
}

/**
 * After a command: shows a notice when a newer release is known (at most daily), and at most daily starts a
 * detached background check. Never waits on the network.
 */
export function notifyAfterCommand(deps: NotifierDeps): void {
  const { env } = deps;
  if (!env.tty || env.ci || env.disabled) return;
  const now = deps.now();
  let state = deps.readState();
  const notice = noticeFor(now, deps.current, state, env);
  if (notice) {
    deps.show(`\n${notice}\n`);
    state = { ...state!, lastNotice: now };
    deps.writeState(state);
  }
  if (deps.spawnCheck && shouldCheck(now, state, env)) {
    deps.writeState({ lastCheck: now, lastNotice: state?.lastNotice ?? 0, latest: state?.latest ?? null });
    deps.spawnCheck();
  }
}

/** The background check: remembers the channel's newest version. Silent: a failed lookup changes nothing. */
export async function recordLatest(deps: Pick<NotifierDeps, "now" | "readState" | "writeState">, latest: () => Promise<string>): Promise<void> {
  try {
    const version = await latest();
    const state = deps.readState() ?? { lastCheck: deps.now(), lastNotice: 0, latest: null };
    deps.writeState({ ...state, latest: version });
  } catch {}
}
