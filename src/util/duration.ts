/**
 * Durations as people type them on the command line (`--time`, `keep --for`): `90s`, `45m`, `4h`, `1h30m`, `2d`, or
 * Slurm's forms (`60` = minutes, `30:00`, `4:00:00`, `2-12`, `2-12:00:00`), so one `--time` reads the same on a native
 * node and a Slurm one. Pure.
 */
const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Seconds, or null when the text is not a duration (or is zero). */
export function parseDuration(text: string): number | null {
  const t = text.trim().toLowerCase();
  let seconds: number | null = null;
  if (/^(\d+[smhd])+$/.test(t)) {
    seconds = 0;
    for (const [, n, unit] of t.matchAll(/(\d+)([smhd])/g)) seconds += Number(n) * unitSeconds[unit!]!;
  } else {
    // Slurm: "M", "M:S", "H:M:S", "D-H", "D-H:M", "D-H:M:S".
    const slurm = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(t);
    if (slurm) {
      const [, days, a, b, c] = slurm;
      const n = (v: string | undefined) => Number(v ?? 0);
      if (days !== undefined) seconds = n(days) * 86400 + n(a) * 3600 + n(b) * 60 + n(c);
      else if (c !== undefined) seconds = n(a) * 3600 + n(b) * 60 + n(c);
      else seconds = n(a) * 60 + n(b);
    }
  }
  return seconds !== null && seconds > 0 && Number.isSafeInteger(seconds) ? seconds : null;
}

/** "45s", "12m", "2h05m", "3d4h": the shape `session list` uses. Pure. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}
