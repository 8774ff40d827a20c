/**
 * After `beaker upgrade` replaced a file: may it restart the node's executor? Only one that runs that very file
 * (its /proc/PID/exe is the replaced inode) and that something will start again from the new one: a systemd unit
 * whose main process it is, that restarts it (Restart= not `no`), and whose ExecStart runs the upgraded path.
 * Anything else is left running, with a line that says what to run. `decideRestart` is pure; `lookAtExecutor` reads
 * /proc and asks systemctl.
 */
import { readFileSync, readlinkSync, realpathSync, statSync, type Stats } from "node:fs";

/** What systemd says of the unit the executor runs in (`systemctl show`). */
export interface UnitFacts {
  id: string;
  mainPid: number;
  restart: string;
  /** ExecStart's program, links resolved (null: none, or it does not exist). */
  execPath: string | null;
}

export interface ExecutorFacts {
  pid: number;
  version: string;
  /** The file it runs: its exe link's target when readable (root), else the path it reports. */
  exePath: string | null;
  /** Whether it runs the replaced file (same device and inode; by resolved path when /proc/PID/exe is not readable). */
  runsReplaced: boolean;
  /** The systemd service its cgroup names, and what systemd says of it (null: none, or systemctl did not answer). */
  unit: string | null;
  unitFacts: UnitFacts | null;
  /** Its command line, to start it again by hand. */
  cmdline: string[];
}

export type RestartDecision = { restart: true } | { restart: false; line: string };

/** The systemd service in /proc/PID/cgroup (v1's name=systemd line, else v2's `0::`), or null. */
export function serviceOfCgroup(text: string): string | null {
  const lines = text.split("\n");
  const path = (lines.find((l) => /^\d+:name=systemd:/.test(l)) ?? lines.find((l) => l.startsWith("0::")))?.replace(/^\d+:[^:]*:/, "");
  const unit = path?.split("/").findLast((part) => part.endsWith(".service"));
  return unit ?? null;
}

/** `systemctl show -p Id -p MainPID -p Restart -p ExecStart UNIT` as facts (ExecStart's `path=` unresolved). */
export function parseSystemctlShow(text: string): { id: string; mainPid: number; restart: string; execPath: string | null } {
  const values = new Map(text.split("\n").flatMap((line) => (line.includes("=") ? [[line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)] as const] : [])));
  return {
    id: values.get("Id") ?? "",
    mainPid: Number(values.get("MainPID") ?? 0) || 0,
    restart: values.get("Restart") ?? "no",
    execPath: /\bpath=(\S+)/.exec(values.get("ExecStart") ?? "")?.[1] ?? null,
  };
}

/** `binary`: the upgraded path (links resolved). */
export function decideRestart(f: ExecutorFacts, binary: string): RestartDecision {
  const who = `this node's executor (pid ${f.pid})`;
  if (!f.runsReplaced) {
    const file = f.exePath ?? "another file";
    return { restart: false, line: `${who} runs ${file}, not ${binary}: it was not restarted (to upgrade that one: sudo ${f.exePath ?? "beaker"} upgrade)` };
  }
  const old = `${who} still runs ${f.version} from the old file`;
  const u = f.unitFacts;
  if (f.unit && u && u.mainPid === f.pid && u.restart !== "no" && u.execPath === binary) return { restart: true };
  if (f.unit) {
    const why = !u ? "systemd did not say how it runs" : u.mainPid !== f.pid ? `it is not its main process` : u.restart === "no" ? "Restart=no" : `it runs ${u.execPath ?? "another program"}`;
    return { restart: false, line: `${old}, and ${f.unit} would not start it again from ${binary} (${why}), so it was not restarted: restart it with 'sudo systemctl restart ${f.unit}'` };
  }
  const again = f.cmdline.length > 0 ? f.cmdline.join(" ") : `${binary} executor run`;
  return { restart: false, line: `${old}, and no systemd unit would start it again, so it was not restarted: stop it (sudo kill ${f.pid}) and start it again as before: ${again}` };
}

const sameFile = (a: Stats, b: Stats) => a.dev === b.dev && a.ino === b.ino;

function read(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

function resolved(path: string | null): string | null {
  try {
    return path ? realpathSync(path) : null;
  } catch {
    return null;
  }
}

/** What an upgrade needs to know of the executor `health` describes; `replaced`: the stat of the file before. */
export function lookAtExecutor(health: { pid: number; version: string; binary: string | null }, binary: string, replaced: Stats): ExecutorFacts {
  const proc = `/proc/${health.pid}`;
  let exe: Stats | null = null;
  try {
    exe = statSync(`${proc}/exe`);
  } catch {}
  let exePath = resolved(health.binary) ?? health.binary;
  try {
    // A replaced file's link reads "<path> (deleted)": the path it was started from.
    exePath = readlinkSync(`${proc}/exe`).replace(/ \(deleted\)$/, "");
  } catch {}
  const runsReplaced = exe ? sameFile(exe, replaced) : exePath === binary;
  const unit = serviceOfCgroup(read(`${proc}/cgroup`) ?? "");
  let unitFacts: UnitFacts | null = null;
  if (unit) {
    try {
      const r = Bun.spawnSync(["systemctl", "show", "-p", "Id", "-p", "MainPID", "-p", "Restart", "-p", "ExecStart", "--", unit], { stdout: "pipe", stderr: "ignore", timeout: 10_000 });
      const shown = r.exitCode === 0 ? parseSystemctlShow(r.stdout.toString()) : null;
      if (shown) unitFacts = { ...shown, execPath: resolved(shown.execPath) };
    } catch {
      // No systemctl: nothing will be said of the unit, and nothing is restarted.
    }
  }
  const cmdline = (read(`${proc}/cmdline`) ?? "").split("\0").filter(Boolean);
  return { pid: health.pid, version: health.version, exePath, runsReplaced, unit, unitFacts, cmdline };
}
