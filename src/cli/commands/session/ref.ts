import type { SessionDetails, SessionInfo } from "../../../executor/api-types.ts";
import { ConflictError, NotFoundError, UsageError } from "../../../errors.ts";
import type { Factory } from "../../factory.ts";
import { formatDuration } from "../../../util/duration.ts";
import type { OptionSpec } from "../../command.ts";

export { formatDuration };

/** `--user U` on the verbs that name a session: names and prefixes find only the caller's own sessions, root's too. */
export const userOption = {
  flags: "--user <name>",
  description: "Root: look among this user's sessions (a name or prefix finds only your own; a full ID finds anyone's)",
  kind: "string",
} as const satisfies OptionSpec;

/**
 * The session an ID (or unique prefix, or name) points at; with none, the caller's only session that has not ended.
 * `user`: among that user's sessions (the executor answers anyone but root as if it had none). Several candidates: a
 * usage error that lists them.
 */
export async function resolveSession(factory: Factory, ref: string | undefined, user?: string): Promise<SessionDetails> {
  const executor = factory.executor();
  const query = user === undefined ? "" : `?user=${encodeURIComponent(user)}`;
  if (!ref) {
    const listed = await executor.request<SessionInfo[]>("GET", user === undefined ? "/v1/sessions" : "/v1/sessions?all=1");
    const open = listed.filter((s) => s.status !== "exited" && (user === undefined || s.user === user));
    if (open.length === 0) throw new NotFoundError(user === undefined ? "you have no running sessions on this node" : `no running sessions of ${user} on this node`);
    if (open.length > 1) {
      const list = open.map((s) => `  ${s.id}  ${s.name}  ${s.status}`).join("\n");
      throw new UsageError(`multiple running sessions found, select one with an ID\n${list}`);
    }
    ref = open[0]!.id;
  }
  return executor.request<SessionDetails>("GET", `/v1/sessions/${encodeURIComponent(ref)}${query}`);
}

/** The resolver `locateSession` calls for this node, looking among `user`'s sessions when given. */
export function resolverFor(user: string | undefined, resolve: (factory: Factory, ref: string | undefined, user?: string) => Promise<SessionDetails>) {
  return (factory: Factory, ref: string | undefined) => resolve(factory, ref, user);
}

/** As resolveSession, refusing a session that has ended (stop). */
export async function resolveOpenSession(factory: Factory, ref: string | undefined, user?: string): Promise<SessionDetails> {
  const session = await resolveSession(factory, ref, user);
  if (session.status === "exited") {
    throw new ConflictError(`session ${session.name} has already ended (${session.reason ?? "exited"}${session.exitCode === null ? "" : `, exit code ${session.exitCode}`})`);
  }
  return session;
}

/** As resolveSession, for commands that need the session running (attach, exec). */
export async function resolveRunningSession(factory: Factory, ref: string | undefined, user?: string): Promise<SessionDetails> {
  const session = await resolveOpenSession(factory, ref, user);
  if (session.status === "queued" || session.status === "stopping") throw new ConflictError(`session ${session.name} is ${session.status}`);
  return session;
}

/** "1234 (gpu, 42m left)": the Slurm job a session runs in, its partition and what its time limit leaves. */
export function formatSlurmJob(job: SessionInfo["slurmJob"], now: Date, ended = false): string {
  if (!job) return "-";
  const left = ended ? null : job.endsAt ? `${formatDuration((Date.parse(job.endsAt) - now.getTime()) / 1000)} left` : "no time limit";
  const detail = [job.partition, left].filter(Boolean).join(", ");
  return detail ? `${job.id} (${detail})` : job.id;
}

/** How long it ran (or has been running); "-" before it started. */
export function sessionDuration(session: SessionInfo, now: Date): string {
  if (!session.startedAt) return "-";
  const end = session.finishedAt ? Date.parse(session.finishedAt) : now.getTime();
  return formatDuration((end - Date.parse(session.startedAt)) / 1000);
}

/** Local time, minute precision: "2026-11-27 23:10". */
export function formatTime(iso: string | null): string {
  if (!iso) return "-";
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A time today as "14:30", another day as "2026-11-28 14:30" (local time). */
export function formatClock(iso: string, now = new Date()): string {
  const full = formatTime(iso);
  return full.slice(0, 10) === formatTime(now.toISOString()).slice(0, 10) ? full.slice(11) : full;
}

/** STATUS as a person reads it: "queued (#2)", "exited (0)", "exited (143, stopped by user)". */
export function formatStatus(session: SessionInfo): string {
  if (session.status === "queued") return session.queuePosition ? `queued (#${session.queuePosition})` : "queued";
  if (session.status !== "exited") return session.status;
  const code = session.exitCode === null ? "" : String(session.exitCode);
  const reason = session.reason && session.reason !== "exited" ? session.reason : "";
  const detail = [code, reason].filter(Boolean).join(", ");
  return detail ? `exited (${detail})` : "exited";
}
