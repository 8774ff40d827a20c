import { randomBytes } from "node:crypto";
import type { Trace } from "../../util/trace.ts";
import { BeakerError, ConflictError, SessionStartError, UsageError } from "../../errors.ts";
import { buildContainerSpec } from "../../runtime/docker/spec.ts";
import { dockerMessage } from "../../runtime/docker/errors.ts";
import { missingPorts, missingPortsMessage, publishedPorts, sessionPorts } from "../../runtime/docker/ports.ts";
import type { CreateEvent, CreateSessionRequest, SessionInfo } from "../api-types.ts";
import { writeAccountFiles } from "./accounts.ts";
import { describeMounts, prepareSession } from "./prepare.ts";
import { ensureNestedPaths, planNestedPaths } from "./mountpoints.ts";
import { ownSession } from "./queries.ts";
import { stageMounts, type StagedMounts } from "./stage.ts";
import { gate, type LiveSession, type PendingSession, type SessionDeps, type SessionHost } from "./types.ts";

/** What creating and starting a session use: the host the Slurm room gets, and making and watching containers. */
export interface CreateHost extends SessionHost {
  readonly deps: SessionDeps;
  readonly pending: Map<string, PendingSession>;
  /** The inventory, with the state machine told which GPUs may be handed out. */
  refreshInventory(): ReturnType<SessionDeps["inventory"]["get"]>;
  reconcile(): Promise<void>;
  track(info: SessionInfo, containerId: string, startGate: LiveSession["startGate"]): LiveSession;
  removeQuietly(id: string): Promise<void>;
}

/**
 * An interactive session is created, then started once its CLI has attached (so no early output is lost). A CLI
 * that dies in between would leave the container created, holding its GPUs with nothing running: after this long
 * the executor starts it anyway, and the user can attach to it.
 */
export const unattachedStartMs = 30_000;

function newSessionId(): string {
  return randomBytes(6).toString("hex");
}

interface CreateInput {
  uid: number;
  req: CreateSessionRequest;
  emit: (e: CreateEvent) => void;
  /** The caller's connection: when it goes away, so does the request (queued or not). */
  signal: AbortSignal;
  /** The caller's Beaker account, when the node has a server (kept in the `beaker.account` label). */
  account: string | null;
  /** Where this request's time goes (`--trace`, or a CLI that asked); the session keeps it. */
  trace: Trace;
}

/** Claim, pull, create, inject the user, and (detached) start. Rolls back on any failure: no container, no claim. */
export async function createSession(m: CreateHost, { uid, req, emit, signal, account, trace }: CreateInput): Promise<SessionInfo> {
  const { config, engine, users, clock } = m.deps;
  const sessionId = newSessionId();
  // Tied to the caller from the first moment: a caller that hangs up while this is prepared or queued ends it.
  const abort = new AbortController();
  const onCallerGone = () => abort.abort(new ConflictError("the caller went away"));
  if (signal.aborted) onCallerGone();
  else signal.addEventListener("abort", onCallerGone, { once: true });
  const cancelled = () => (abort.signal.reason instanceof BeakerError ? abort.signal.reason : new ConflictError("the caller went away"));
  let containerId: string | null = null;
  let staged: StagedMounts | null = null;
  let holderTaken: Promise<string | null> = Promise.resolve(null);
  try {
    // Sent again after a restart: the ticket names the place it had (checked: this node's, this user's, this request).
    const place = m.deps.tickets.placeOf(uid, req);
    emit({ type: "ticket", sessionId, ticket: m.deps.tickets.issue(sessionId, uid, req) });
    const user = await users.lookup(uid);
    trace.mark("user lookup");
    const nameTaken = (owner: number, name: string) => [...m.sessions.values(), ...m.pending.values()].some((s) => s.info.uid === owner && s.info.name === name);
    const plan = prepareSession(config, { ...m.deps.node, nameTaken }, user, req);
    // Until a listing has said what runs (Docker was down at start), nothing is granted: ask for one now.
    if (!m.claims.state.ready) await m.reconcile().catch(() => {});
    // It became a session before the restart, and only the answer was lost: that session is the answer.
    const earlier = place ? ownSession(m, uid, place) : null;
    if (earlier) return earlier;
    const inventory = await m.refreshInventory();
    trace.mark("prepare");
    if (abort.signal.aborted) throw cancelled();
    const count = req.gpus ?? (inventory.gpus.length > 0 ? 1 : 0);
    const image = req.image ?? config.defaultImage;
    const name = req.name ?? `${user.name}-${sessionId.slice(0, 6)}`;
    const info: SessionInfo = {
      id: sessionId,
      name,
      node: config.nodeName,
      user: plan.user.name,
      account,
      uid,
      gpus: [],
      requestedGpus: count,
      image,
      status: "starting",
      tty: req.tty,
      ports: [],
      mounts: describeMounts(plan),
      createdAt: new Date(clock.now()).toISOString(),
      startedAt: null,
      finishedAt: null,
      queuePosition: null,
      exitCode: null,
      reason: null,
      slurmJob: null,
    };
    m.pending.set(sessionId, { info, abort });
    // The image is looked up (and pulled) while the request waits for GPUs; an image that cannot be had ends the wait.
    const imageReady = engine.ensureImage(image, (p) => emit({ type: "pulling", image, ...p }));
    imageReady.catch((err) => abort.abort(err));
    info.gpus = m.deps.slurm
      ? await m.deps.slurm.claim(m, { sessionId, uid, count, req, info, emit, signal: abort.signal })
      : await m.claims.claim(sessionId, { uid, count, noWait: req.noWait, memory: plan.memoryBytes, ...(place ? { place } : {}) }, emit, abort.signal);
    trace.mark("claim");
    // A warm network namespace (netns-pool.ts), checked while the image is: only once the GPUs are had, never queued.
    // Published ports belong to the namespace's maker: a session that publishes makes its own.
    if (m.deps.netns && (req.ports.length === 0 || config.publish !== "host")) holderTaken = m.deps.netns.take(sessionId);
    Object.assign(info, { status: "starting", queuePosition: null });
    const imageId = await imageReady;
    trace.mark("image check");
    const facts = await engine.imageFacts(imageId, config.nodeName);
    trace.mark("image facts");
    if (req.command.length === 0 && !facts.hasShell) {
      throw new SessionStartError(`image ${image} has no shell (/bin/sh); give a command: beaker session create --image ${image} -- CMD`);
    }
    const groups = await Promise.all(
      [plan.user.gid, ...plan.user.groups].filter((g, i, all) => all.indexOf(g) === i).map(async (gid) => ({ gid, name: (await users.groupName(gid)) ?? `g${gid}` })),
    );
    const accountFiles = writeAccountFiles(config.stateDir, facts, plan.user, groups);
    trace.mark("user files");
    if (abort.signal.aborted) throw cancelled();
    staged = await stageMounts(config.stateDir, sessionId, plan.userMounts, plan.user, plan.sourcePolicy);
    if (plan.userMounts.length > 0) trace.mark("mounts staged");
    const netnsHolder = await holderTaken;
    if (netnsHolder) trace.mark("warm network taken");
    const spec = buildContainerSpec({
      ...plan,
      mounts: [...plan.nodePaths, ...staged.mounts],
      shownMounts: info.mounts,
      accountFiles,
      sessionId,
      name,
      node: config.nodeName,
      image,
      gpus: info.gpus,
      tty: req.tty,
      term: req.term,
      account,
      slurmJob: info.slurmJob?.id ?? null,
      netnsHolder,
    });
    // Targets and the working directory inside another bind mount: made by the user now, never by runc as root.
    const nested = planNestedPaths(spec.HostConfig?.Mounts ?? [], spec.WorkingDir ?? "/");
    await ensureNestedPaths(nested, plan.user);
    if (nested.length > 0) trace.mark("nested paths");
    containerId = await engine.create(spec);
    if (netnsHolder) m.deps.netns?.settle(netnsHolder, true);
    trace.mark("create");
    if (abort.signal.aborted) throw cancelled();
    m.claims.dispatch({ type: "confirmed", sessionId });
    const session = m.track(info, containerId, gate());
    session.requestedPorts = req.ports;
    session.timeLimit = plan.timeLimit;
    session.releaseMounts = staged.release;
    // Checked again right before the start: the user may have removed what was made while the session waited.
    if (nested.length > 0) session.checkNestedPaths = () => ensureNestedPaths(nested, plan.user);
    session.trace = trace;
    m.deps.log(`created session ${sessionId} for ${plan.user.name} (GPUs: ${info.gpus.join(",") || "none"}, image ${image})`);
    if (req.detach) await startSession(m, sessionId);
    else clock.later(unattachedStartMs, () => void startSession(m, sessionId).catch(() => {}));
    return info;
  } catch (err) {
    // A holder taken for a container never made goes now; one a container named goes with that container.
    const holder = await holderTaken.catch(() => null);
    if (holder && !containerId) m.deps.netns?.settle(holder, false);
    if (containerId && !m.sessions.has(sessionId)) await m.removeQuietly(containerId);
    if (!m.sessions.has(sessionId)) {
      await staged?.release();
      // Frees a reservation (or leaves the queue); a session already tracked frees its GPUs when its container is gone.
      m.claims.dispatch({ type: "cancel", sessionId });
      // A job Slurm gave this request goes back (by its ID: the node-wide listing may not show it).
      const job = m.pending.get(sessionId)?.info.slurmJob;
      if (job && m.deps.slurm) {
        m.deps.slurm.release(sessionId, job.id, uid);
        void m.deps.slurm.sync(m);
      }
    }
    throw err;
  } finally {
    m.pending.delete(sessionId);
    signal.removeEventListener("abort", onCallerGone);
  }
}

/** Starts a created session (once); on failure the container is removed, and its watcher frees the GPUs. */
export async function startSession(m: CreateHost, sessionId: string): Promise<void> {
  const session = m.sessions.get(sessionId);
  if (!session || session.info.status !== "starting") return;
  session.info.status = "running";
  try {
    await session.checkNestedPaths?.();
    await m.deps.engine.start(session.containerId);
    session.trace.mark("start");
    if (session.requestedPorts.length > 0) {
      const state = await m.deps.engine.publishedState(session.containerId);
      const published = m.deps.config.publish === "host";
      session.info.ports = published ? publishedPorts(state.ports) : sessionPorts(session.requestedPorts);
      // A port asked for and not had is a failed start, never silence.
      const missing = missingPorts(session.requestedPorts, state, published);
      if (missing) throw new SessionStartError(missingPortsMessage(missing));
    }
    session.info.startedAt = new Date(m.deps.clock.now()).toISOString();
    m.deps.onChange?.();
  } catch (err) {
    session.stopReason ??= "exited";
    await m.removeQuietly(session.containerId);
    if (err instanceof SessionStartError || err instanceof UsageError) throw err;
    throw new SessionStartError(`the session's container did not start: ${dockerMessage(err)}`);
  } finally {
    // A started container holds its own binds; the staging ones are no longer needed either way.
    await session.releaseMounts();
    session.startGate.open();
    // Warm network namespaces are made again now, off this session's own start.
    m.deps.netns?.refill();
  }
}
