import { randomBytes } from "node:crypto";
import type Dockerode from "dockerode";
import type { ExecutorConfig } from "../../config/executor.ts";
import { isUserDefinedNetwork, type DockerEngine } from "../../runtime/docker/engine.ts";
import { hostnameFor, netnsHolderLabel } from "../../runtime/docker/spec.ts";

/**
 * Warm network namespaces, like the pause container of a Kubernetes pod. Most of a container's start is Docker making
 * its network: a namespace, a veth pair on the bridge, and on a user-defined network such as the isolated
 * `beaker-sessions` its embedded DNS too (a re-exec of dockerd and iptables runs inside the namespace). On the 2-core
 * development machine that is 250 to 300 ms of a `docker run`'s 400. A holder is a container that only keeps a
 * namespace on that network, made ahead of time; a new session joins one (`container:<holder>`) and starts with its
 * network already there (bench/session: a create's start step 70 ms against docker run's 165 ms).
 *
 * Each holder serves one session and is never handed out again, so sessions never share a namespace and stay as
 * isolated from each other as before (test/security/attacks.test.ts, 6). It runs the node's default image (the
 * admin's choice, never a user's) as `sh` reading a stdin nobody writes, as nobody, with no capabilities, a read-only
 * root and small limits. A session that publishes ports makes its own namespace as before (published ports belong to
 * the namespace's maker), and so does any session when no holder is warm.
 *
 * A holder is kept while a session container names it (label `beaker.netns-holder`, so this survives restarts) and
 * removed when that session ends, or at the next tend after its container is gone; the pool is made up again after
 * each session's start (off its critical path) and at every tend; a stopping executor removes the holders no session
 * joined.
 */
export const holderLabel = "beaker.netns";
export const poolSize = 2;

/** Whether sessions on this network gain from holders: Docker starts an embedded DNS on user-defined networks only. */
export const holdersHelp = isUserDefinedNetwork;

export interface TendView {
  /** The holders Docker lists for this node. */
  holders: ReadonlyArray<{ id: string; running: boolean }>;
  /** The holders that session containers name, from a listing asked for at `since`. */
  named: ReadonlySet<string>;
  idle: readonly string[];
  /** Holders taken by creates: when their session container was made, or null while it is being made. */
  taken: ReadonlyMap<string, number | null>;
  since: number;
}

/**
 * What a tend keeps and removes. A holder taken for a session made before the listing was asked for is the listing's
 * to judge (named: its session runs; not named: its session is gone); one whose session is being made, or was made
 * after the listing was asked for, is kept. Pure.
 */
export function planTend(view: TendView): { remove: string[]; idle: string[]; taken: Map<string, number | null> } {
  const taken = new Map([...view.taken].filter(([id, settled]) => settled === null || settled >= view.since || view.named.has(id)));
  const running = new Set(view.holders.filter((h) => h.running).map((h) => h.id));
  const idle = view.idle.filter((id) => running.has(id));
  const remove = view.holders.map((h) => h.id).filter((id) => !view.named.has(id) && !taken.has(id) && !idle.includes(id));
  return { remove, idle, taken };
}

function namedHolders(sessions: ReadonlyArray<{ labels: Record<string, string> }>): Set<string> {
  return new Set(sessions.map((s) => s.labels[netnsHolderLabel]).filter((id): id is string => Boolean(id)));
}

/** What the pool asks of Docker. */
export type HolderEngine = Pick<DockerEngine, "create" | "start" | "remove" | "imageId" | "imageFacts" | "listManaged" | "listLabelled" | "isRunning">;

export class NetnsPool {
  private idle: string[] = [];
  /** Holders taken by creates: the session, and when its container was made (null while it is being made). */
  private taken = new Map<string, { session: string; settled: number | null }>();
  /** Making holders and tending run one at a time, so a tend never sees a holder half made. */
  private queue: Promise<void> = Promise.resolve();
  private tending: Promise<void> | null = null;
  private closing = false;
  private warned = false;
  private lastFailure: string | null = null;

  constructor(
    private readonly engine: HolderEngine,
    private readonly config: Pick<ExecutorConfig, "nodeName" | "sessionNetwork" | "defaultImage">,
    private readonly log: (line: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * A running holder for a new session, or null when none is warm (the session makes its own namespace). The pool is
   * made up again once the session has started (`refill`), so making holders never slows a session's own start.
   */
  async take(sessionId: string): Promise<string | null> {
    for (let id = this.idle.shift(); id !== undefined; id = this.idle.shift()) {
      this.taken.set(id, { session: sessionId, settled: null });
      if (await this.engine.isRunning(id).catch(() => false)) return id;
      this.settle(id, false);
    }
    return null;
  }

  /** Makes idle holders up to the pool's size, in the background. */
  refill(): void {
    if (!this.closing) void this.serially(() => this.make());
  }

  /** The session that took `holder` exists (its container names the holder), or was never made (the holder goes). */
  settle(holder: string, created: boolean): void {
    const taken = this.taken.get(holder);
    if (created && taken) {
      taken.settled = this.now();
      return;
    }
    this.taken.delete(holder);
    void this.engine.remove(holder).catch(() => {});
  }

  /** The session's container is gone: so goes its holder (a tend would find it too, later). */
  ended(sessionId: string): void {
    for (const [holder, taken] of this.taken) if (taken.session === sessionId) this.settle(holder, false);
  }

  /** With every reconcile: removes the holders no session needs any more, then makes idle ones up to the pool's size. */
  tend(): Promise<void> {
    this.tending ??= this.serially(async () => {
      const since = this.now();
      const [holders, sessions] = await Promise.all([this.list(), this.engine.listManaged(this.config.nodeName)]);
      const settled = new Map([...this.taken].map(([id, t]) => [id, t.settled]));
      const plan = planTend({ holders, named: namedHolders(sessions), idle: this.idle, taken: settled, since });
      this.idle = plan.idle;
      for (const id of this.taken.keys()) if (!plan.taken.has(id)) this.taken.delete(id);
      for (const id of plan.remove) await this.engine.remove(id).catch(() => {});
      if (!this.closing) await this.make();
    }).finally(() => (this.tending = null));
    return this.tending;
  }

  /** On stop: every holder no session container names goes (those of running sessions stay for the next executor). */
  async close(): Promise<void> {
    this.closing = true;
    await this.queue;
    const [holders, sessions] = await Promise.all([this.list(), this.engine.listManaged(this.config.nodeName)]);
    const plan = planTend({ holders, named: namedHolders(sessions), idle: [], taken: new Map(), since: this.now() });
    for (const id of plan.remove) await this.engine.remove(id).catch(() => {});
  }

  private serially(step: () => Promise<void>): Promise<void> {
    const next = this.queue.then(step).then(() => void (this.lastFailure = null), (err) => {
      // Said once while it lasts: a tend every few seconds must not repeat the same failure into the log.
      const line = `network holders: ${(err as Error).message}`;
      if (line !== this.lastFailure) this.log(line);
      this.lastFailure = line;
    });
    this.queue = next;
    return next;
  }

  private async make(): Promise<void> {
    while (this.idle.length < poolSize) {
      const image = await this.holderImage();
      if (!image) return;
      const id = await this.engine.create(this.holderSpec(image));
      try {
        await this.engine.start(id);
      } catch (err) {
        await this.engine.remove(id).catch(() => {});
        throw err;
      }
      this.idle.push(id);
    }
  }

  /** The node's default image when it is here and has a shell; never pulled for this, never a user's image. */
  private async holderImage(): Promise<string | null> {
    const id = await this.engine.imageId(this.config.defaultImage);
    const usable = id !== null && (await this.engine.imageFacts(id, this.config.nodeName)).hasShell;
    if (!usable && !this.warned) this.log(`no warm network namespaces: the default image ${this.config.defaultImage} is not here or has no /bin/sh`);
    this.warned ||= !usable;
    return usable ? id : null;
  }

  private holderSpec(image: string): Dockerode.ContainerCreateOptions {
    return {
      name: `beaker-netns-${randomBytes(6).toString("hex")}`,
      Image: image,
      Entrypoint: ["/bin/sh"],
      // Stdin stays open and nobody writes to it: `read` waits for ever, with nothing else running.
      Cmd: ["-c", "read _"],
      OpenStdin: true,
      User: "65534:65534",
      Hostname: hostnameFor(this.config.nodeName),
      Labels: { [holderLabel]: this.config.nodeName },
      HostConfig: {
        NetworkMode: this.config.sessionNetwork,
        Init: true,
        CapDrop: ["ALL"],
        SecurityOpt: ["no-new-privileges"],
        ReadonlyRootfs: true,
        Memory: 32 * 1024 * 1024,
        PidsLimit: 8,
      },
    };
  }

  private list(): Promise<Array<{ id: string; running: boolean }>> {
    return this.engine.listLabelled(`${holderLabel}=${this.config.nodeName}`);
  }
}
