import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { AuthError, ConflictError, errorMessage, UnavailableError } from "../errors.ts";
import { sessionPortNumbers } from "../runtime/docker/ports.ts";
import { ServerClient } from "../server/client.ts";
import type { Heartbeat, UserInfo } from "../server/types.ts";
import { buildInfo } from "../version.ts";
import type { GpuUseMonitor } from "./gpu/gpu-use.ts";
import type { SessionManager } from "./sessions/manager.ts";

/** What a heartbeat reports: the node's GPUs and sessions, and (where the monitor runs) its GPUs' 5-minute means. */
export interface ReportedNode {
  sessions: Pick<SessionManager, "gpuReport" | "foreignProcesses" | "liveSessions">;
  use: Pick<GpuUseMonitor, "nodeGpuMeans"> | null;
}

/** A good answer is trusted this long before the server is asked again... */
const freshMs = 60_000;
/** ...and, while the server cannot be reached, this long at most, so known users keep working through an outage. */
const outageMs = 7 * 24 * 3600 * 1000;

/**
 * Checks users' Beaker tokens with the server. Good answers are cached by the token's hash (never the token), so a
 * server outage does not stop the sessions of people it already knows; a refused token is forgotten at once.
 */
export class TokenChecker {
  private cache = new Map<string, { user: UserInfo; checkedAt: number }>();

  constructor(
    private readonly serverUrl: string,
    private readonly log: (line: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  async check(token: string | null): Promise<UserInfo> {
    if (!token) throw new AuthError(`this node uses the Beaker server at ${this.serverUrl}: a user token is needed`);
    const key = createHash("sha256").update(token).digest("hex");
    const cached = this.cache.get(key);
    if (cached && this.now() - cached.checkedAt < freshMs) return cached.user;
    try {
      const user = await new ServerClient(this.serverUrl, token, 3000).whoami();
      // Bounded: the oldest answer goes first (a node has a few hundred users, not thousands).
      if (this.cache.size >= 1000 && !this.cache.has(key)) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, { user, checkedAt: this.now() });
      return user;
    } catch (err) {
      if (err instanceof AuthError) {
        this.cache.delete(key);
        throw new AuthError(`the Beaker server at ${this.serverUrl} refused your token: ${err.message}`);
      }
      if (cached && this.now() - cached.checkedAt < outageMs) {
        this.log(`server unreachable (${errorMessage(err)}); trusting the cached answer for ${cached.user.name}`);
        return cached.user;
      }
      throw new UnavailableError(`cannot check your token: ${errorMessage(err)}`);
    }
  }
}

/**
 * A figure as reported to the server: rounded to `step`, and kept at the value reported last while it stays within a
 * step of it, so a GPU that hovers around 95% does not change the report (and make the server write it) every time.
 * Pure.
 */
export function steadyFigure(previous: number | null | undefined, value: number | null, step: number): number | null {
  if (value === null) return null;
  if (previous !== null && previous !== undefined && Math.abs(value - previous) < step) return previous;
  return Math.round(value / step) * step;
}

/** The node token, from a root-only file; problems are said plainly (and the link retries). */
export function readNodeToken(path: string): string {
  if (!existsSync(path)) throw new Error(`${path} does not exist: put the token of 'beaker server node add HOSTNAME' there (mode 0600)`);
  const st = statSync(path);
  if (st.mode & 0o077) throw new Error(`${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`);
  return readFileSync(path, "utf8").trim();
}

/**
 * Registers this node with the server and reports its GPUs and sessions every few seconds; learns whether an admin
 * cordoned it. Runs until stopped; a server that is down only delays the reports.
 */
export class ServerLink {
  cordoned = false;
  private timer: ReturnType<typeof setInterval> | null = null;
  private lastError = "";
  private sending = false;
  private warnedCluster = false;
  /** The GPU-use figures last reported, by GPU and kind (see steadyFigure). */
  private figures = new Map<string, number | null>();

  constructor(
    private readonly options: { serverUrl: string; tokenFile: string; nodeName: string; cluster: string | null; intervalMs: number },
    private readonly node: ReportedNode,
    private readonly log: (line: string) => void,
  ) {}

  start(): void {
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.options.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Refuses new sessions while an admin has cordoned the node. */
  assertAcceptingSessions(): void {
    if (this.cordoned) throw new ConflictError("this node is cordoned by an admin: no new sessions start here (running ones go on)");
  }

  async report(): Promise<Heartbeat> {
    const { gpus } = await this.node.sessions.gpuReport();
    const foreign = await this.node.sessions.foreignProcesses();
    // GPU use goes in coarse and steady (5-minute means, 10% and 1 GiB steps): an unchanged report is then byte for
    // byte the last one, and the server stores nothing but the time it came.
    const figures = new Map<string, number | null>();
    const figure = (key: string, value: number | null, step: number) => {
      const steady = steadyFigure(this.figures.get(key), value, step);
      figures.set(key, steady);
      return steady;
    };
    const use = new Map(
      gpus
        .filter((g) => g.uuid !== null)
        .map((g) => {
          const means = this.node.use?.nodeGpuMeans(g.uuid!) ?? { utilization: g.utilization, memoryUsedMiB: g.memoryUsedMiB };
          return [g.uuid!, { utilization: figure(`u:${g.uuid}`, means.utilization, 10), memoryUsedMiB: figure(`m:${g.uuid}`, means.memoryUsedMiB, 1024) }];
        }),
    );
    this.figures = figures;
    return {
      cpus: cpus().length,
      memoryBytes: totalmem(),
      version: buildInfo.version,
      gpus: gpus
        .filter((g) => g.uuid !== null)
        .map((g) => ({
          index: g.index,
          uuid: g.uuid!,
          name: g.name,
          memoryMiB: g.memoryTotalMiB,
          claimedBy: g.claimedBy,
          healthy: g.healthy,
          error: g.healthy ? null : g.error,
          foreignProcesses: (foreign[g.uuid!] ?? []).map((p) => ({ pid: p.pid, name: p.name })),
          ...use.get(g.uuid!)!,
        })),
      sessions: this.node.sessions.liveSessions().map((s) => ({
        id: s.id,
        name: s.name,
        user: s.account ?? s.user,
        gpus: s.gpus,
        image: s.image,
        status: s.status,
        createdAt: s.createdAt,
        startedAt: s.startedAt,
        utilization: s.gpus.map((uuid) => use.get(uuid)?.utilization ?? null),
        idleSince: s.idleSince,
        deadline: s.deadline,
        ports: sessionPortNumbers(s.ports),
      })),
    };
  }

  /** One report now (also called when a session starts or ends, so the server's picture follows at once). */
  async beat(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      const token = readNodeToken(this.options.tokenFile);
      const answer = await new ServerClient(this.options.serverUrl, token, 5000).heartbeat(this.options.nodeName, await this.report());
      if (answer.cordoned !== this.cordoned) this.log(answer.cordoned ? "an admin cordoned this node: no new sessions" : "this node is no longer cordoned");
      this.cordoned = answer.cordoned;
      if (this.options.cluster && answer.cluster !== this.options.cluster && !this.warnedCluster) {
        this.log(`this node is in cluster ${answer.cluster} on the server, not ${this.options.cluster} as the config says; the server's word counts`);
        this.warnedCluster = true;
      }
      if (this.lastError) this.log(`reporting to ${this.options.serverUrl} again`);
      this.lastError = "";
    } catch (err) {
      const message = errorMessage(err);
      if (message !== this.lastError) this.log(`cannot report to the server: ${message}`);
      this.lastError = message;
    } finally {
      this.sending = false;
    }
  }
}
