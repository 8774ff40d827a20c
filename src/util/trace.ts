/**
 * Where the time of one request goes: named points in time, kept in order and printed on demand (`BEAKER_TRACE=1`
 * or `--debug` in the CLI, `beaker executor run --trace` in the daemon). Points are wall-clock milliseconds with
 * sub-millisecond precision (the runtime's time origin plus its monotonic clock), so the CLI and the executor, on one
 * host, put their points on one timeline.
 */
export interface TracePoint {
  /** What had just finished: "claim", "create", "start". */
  phase: string;
  /** Milliseconds since the epoch. */
  at: number;
}

export interface SourcedPoint extends TracePoint {
  /** Which process saw it: "cli" or "executor". */
  source: string;
}

export const traceNow = (): number => performance.timeOrigin + performance.now();

/** The request header (CLI to executor) asking for the executor's points in the reply. */
export const traceHeader = "x-beaker-trace";

export class Trace {
  readonly points: TracePoint[] = [];

  mark(phase: string, at = traceNow()): void {
    this.points.push({ phase, at });
  }
}

/** A CLI trace that also keeps the executor's points it was sent, to print both as one timeline. */
export class Timeline {
  readonly points: SourcedPoint[] = [];

  mark(phase: string, at = traceNow()): void {
    this.points.push({ source: "cli", phase, at });
  }

  /** Adds another process's points; one it already has (sent again with a later message) is kept once. */
  add(source: string, points: readonly TracePoint[] | undefined): void {
    for (const p of points ?? []) {
      if (!this.points.some((q) => q.source === source && q.phase === p.phase && q.at === p.at)) this.points.push({ source, phase: p.phase, at: p.at });
    }
  }
}

/**
 * The timeline as text: per point, milliseconds since `origin`, the gap since the point before, who saw it and what.
 * Sorted by time (the two processes' points interleave). Pure.
 */
export function formatTimeline(origin: number, points: readonly SourcedPoint[]): string {
  const sorted = [...points].sort((a, b) => a.at - b.at);
  const lines = ["beaker trace: ms since the CLI started, +ms since the line before"];
  let previous = origin;
  for (const p of sorted) {
    const offset = (p.at - origin).toFixed(1).padStart(8);
    const gap = `+${(p.at - previous).toFixed(1)}`.padStart(8);
    lines.push(`${offset} ${gap}  ${p.source.padEnd(8)} ${p.phase}`);
    previous = p.at;
  }
  return `${lines.join("\n")}\n`;
}

/** One line for a log: `received +0.0, parsed +0.3, ...` relative to the first point. Pure. */
export function formatInline(points: readonly TracePoint[], origin = points[0]?.at ?? 0): string {
  return points.map((p) => `${p.phase} +${(p.at - origin).toFixed(1)}`).join(", ");
}

/** For `beaker executor run --trace`: a create's phases once its container exists, and the rest once it is gone. */
export function logCreateTrace(sessionId: string, trace: Trace, ended: Promise<unknown>, log: (line: string) => void): void {
  const origin = trace.points[0]?.at ?? 0;
  const created = trace.points.length;
  log(`trace ${sessionId} create: ${formatInline(trace.points, origin)}`);
  void ended.then(() => log(`trace ${sessionId} run: ${formatInline(trace.points.slice(created), origin)}`));
}
