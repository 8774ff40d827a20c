/** How `session list` and `describe` show a session's GPU use, idleness and time limit. Pure. */
import type { SessionView } from "../../../executor/api-types.ts";
import { formatSize } from "../../../config/size.ts";
import { formatDuration } from "../../../util/duration.ts";
import { formatStatus } from "./ref.ts";

function mean(values: Array<number | null>): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length === 0 ? null : known.reduce((a, b) => a + b, 0) / known.length;
}

/** GPU%: the 5-minute mean utilization across the session's GPUs, "-" before a sample. */
export function gpuPercent(s: SessionView): string {
  const m = mean(s.gpuUtilization.map((g) => g.mean5m));
  return m === null ? "-" : `${Math.round(m)}%`;
}

/** GPU MEM: the 5-minute mean memory in use across the session's GPUs. */
export function gpuMemory(s: SessionView): string {
  const m = mean(s.gpuMemoryUsedMiB.map((g) => g.mean5m));
  return m === null ? "-" : formatSize(Math.round(m) * 1048576);
}

const since = (iso: string, now: Date) => formatDuration((now.getTime() - Date.parse(iso)) / 1000);
const until = (iso: string, now: Date) => formatDuration((Date.parse(iso) - now.getTime()) / 1000);

/** STATUS with idleness: "running, idle 1h45m, stops in 15m". */
export function statusWithUse(s: SessionView, now: Date): string {
  const status = formatStatus(s);
  if (s.status !== "running" || !s.idleSince) return status;
  const idle = `${status}, idle ${since(s.idleSince, now)}`;
  if (!s.idleStopsAt || s.idleAction === "warn" || s.idleAction === null) return idle;
  const due = Date.parse(s.idleStopsAt) <= now.getTime();
  if (s.idleAction === "stop-when-queued") return due ? `${idle}, stops when GPUs are wanted` : `${idle}, stops in ${until(s.idleStopsAt, now)} if GPUs are wanted`;
  return due ? `${idle}, stopping` : `${idle}, stops in ${until(s.idleStopsAt, now)}`;
}

/** LEFT: the time to the session's time limit, "-" without one. */
export function timeLeft(s: SessionView, now: Date): string {
  return s.deadline && s.status !== "exited" ? until(s.deadline, now) : "-";
}

/** describe's lines for each GPU: "0  87% now, 85% 5m, 60% 1h  30.9/31.7 GiB". */
export function gpuUseLines(s: SessionView, indexOf: (uuid: string) => number | null): string[] {
  const pct = (v: number | null) => (v === null ? "?" : `${v}%`);
  return s.gpuUtilization.map((u, i) => {
    const m = s.gpuMemoryUsedMiB[i];
    const memory = m && m.last !== null ? `${formatSize(m.last * 1048576)}${m.totalMiB ? ` of ${formatSize(m.totalMiB * 1048576)}` : ""}` : "memory ?";
    return `${indexOf(u.uuid) ?? "?"}  ${pct(u.last)} now, ${pct(u.mean5m)} over 5m, ${pct(u.mean1h)} over 1h  ${memory}`;
  });
}
