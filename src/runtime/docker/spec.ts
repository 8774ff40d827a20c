import type Dockerode from "dockerode";
import { UsageError } from "../../errors.ts";

/** The caller as the executor resolved them from their uid. */
export interface SessionUser {
  name: string;
  uid: number;
  gid: number;
  groups: number[];
  /** Home on the node, bind-mounted at the same path. */
  home: string;
  gecos: string;
}

export interface BindMount {
  source: string;
  target: string;
  readOnly: boolean;
}

export interface SpecInput {
  sessionId: string;
  name: string;
  node: string;
  user: SessionUser;
  image: string;
  /** null: the image's shell, interactively. */
  command: string[] | null;
  gpus: string[];
  env: string[];
  cpus: number | null;
  memoryBytes: number | null;
  shmBytes: number | null;
  ports: number[];
  /** Already checked: `/net` and friends that exist, and the user's --mount list (staged: see executor/sessions/stage.ts). */
  mounts: BindMount[];
  /** The mounts as the user named them (label `beaker.mounts`, for describe after an executor restart). */
  shownMounts: string[];
  /** The caller's /etc/passwd and /etc/group for this image, made by the executor and mounted read-only. */
  accountFiles: { passwd: string; group: string } | null;
  /** Processes the session may have; 0 = no limit. */
  pidsLimit: number;
  /** The Docker network the session joins. */
  network: string;
  /**
   * A container already on `network` whose network namespace the session joins instead of making its own (a warm
   * one: executor/network/netns-pool.ts). Its hostname is the session's; a session that publishes ports never gets one.
   */
  netnsHolder?: string | null;
  /** The host address its ports are published on (executor config `publish: host`), or null: not published. */
  publishAddress: string | null;
  workdir: string;
  tty: boolean;
  term: string | null;
  /** The caller's Beaker account on a node with a server (label `beaker.account`), else null. */
  account: string | null;
  /** The Slurm job the session runs in (label `beaker.slurm.job`), or null. */
  slurmJob?: string | null;
  /** `--time`: seconds it may run (label `beaker.time-limit`, so a restarted executor still stops it), else null. */
  timeLimit?: number | null;
  /** RLIMIT_MEMLOCK for the container, bytes; -1 is unlimited (what NCCL wants). */
  memlock: number;
  /** This beaker binary, mounted read-only at /usr/local/bin/beaker so git's credential helper works inside. */
  beakerBinary: string | null;
  /** The loader and libraries beaker runs with (a folder), mounted read-only at /usr/local/lib/beaker: see session-runtime.ts. */
  beakerRuntime?: string | null;
}

/** Where a session finds this binary, and the loader and libraries that start it on any image (busybox, Alpine). */
export const beakerInSession = "/usr/local/bin/beaker";
export const beakerRuntimeInSession = "/usr/local/lib/beaker";

/** Environment variables that select GPUs; a user may never set them, or they could reach unclaimed GPUs. */
export const reservedEnv = /^(NVIDIA_.*|CUDA_VISIBLE_DEVICES|CUDA_DEVICE_ORDER|GPU_DEVICE_ORDINAL|HIP_VISIBLE_DEVICES|ROCR_VISIBLE_DEVICES)$/;
const defaultShmBytes = 8 * 1024 ** 3;

export function checkEnv(entries: string[]): void {
  for (const entry of entries) {
    const key = entry.split("=", 1)[0]!;
    if (!entry.includes("=") || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new UsageError(`--env "${entry}" must be KEY=VALUE`);
    if (reservedEnv.test(key)) throw new UsageError(`--env ${key} is not allowed: Beaker sets the GPU variables from the GPUs it claims`);
  }
}

export function shmSizeFor(memoryBytes: number | null, requested: number | null): number {
  if (requested !== null) return requested;
  return memoryBytes !== null ? Math.floor(memoryBytes / 2) : defaultShmBytes;
}

/** The working directory: the caller's when it is inside their home, else the home. */
export function workdirFor(cwd: string, home: string, requested: string | null): string {
  if (requested) return requested;
  return cwd === home || cwd.startsWith(`${home.replace(/\/+$/, "")}/`) ? cwd : home;
}

/** The hostname sessions of a node get: the node's short name. */
export function hostnameFor(node: string): string {
  return node.split(".")[0]!.slice(0, 63);
}

/** The label naming the network holder a session joined (executor/network/netns-pool.ts keeps it while a session names it). */
export const netnsHolderLabel = "beaker.netns-holder";

/** Docker's ContainerCreate body for a session. Pure: everything it needs is in the input. */
export function buildContainerSpec(input: SpecInput): Dockerode.ContainerCreateOptions {
  const { user } = input;
  checkEnv(input.env);
  const env = [
    `HOME=${user.home}`,
    `USER=${user.name}`,
    `LOGNAME=${user.name}`,
    ...(input.term ? [`TERM=${input.term}`] : []),
    ...(input.gpus.length === 0 ? ["NVIDIA_VISIBLE_DEVICES=void"] : []),
    ...input.env,
  ];
  const bind = (source: string, target: string, readOnly: boolean) => ({ Type: "bind" as const, Source: source, Target: target, ReadOnly: readOnly });
  // The Mounts API (not Binds): a missing source is an error, never a directory Docker makes as root.
  const mounts = [
    bind(user.home, user.home, false),
    ...input.mounts.map((m) => bind(m.source, m.target, m.readOnly)),
    ...(input.beakerBinary ? [bind(input.beakerBinary, beakerInSession, true)] : []),
    ...(input.beakerBinary && input.beakerRuntime ? [bind(input.beakerRuntime, beakerRuntimeInSession, true)] : []),
    ...(input.accountFiles ? [bind(input.accountFiles.passwd, "/etc/passwd", true), bind(input.accountFiles.group, "/etc/group", true)] : []),
  ];
  const exposed: Record<string, object> = {};
  const portBindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  // Only what is published is exposed: Docker refuses either on a session that joins a warm namespace.
  const hostIp = input.publishAddress;
  if (hostIp !== null) {
    for (const port of input.ports) {
      exposed[`${port}/tcp`] = {};
      portBindings[`${port}/tcp`] = [{ HostIp: hostIp, HostPort: "" }];
    }
  }
  const holder = input.netnsHolder ?? null;
  if (holder && Object.keys(portBindings).length > 0) throw new Error("a session that publishes ports makes its own network namespace");
  const shell = ["/bin/sh", "-c", 'if [ -x /bin/bash ]; then exec /bin/bash -l; else exec /bin/sh -l; fi'];
  return {
    name: `beaker-${input.sessionId}`,
    Image: input.image,
    ...(input.command ? { Cmd: input.command } : { Cmd: shell }),
    User: `${user.uid}:${user.gid}`,
    Env: env,
    WorkingDir: input.workdir,
    // Joining a holder's namespace, the session gets the holder's hostname (Docker refuses one of its own).
    ...(holder ? {} : { Hostname: hostnameFor(input.node) }),
    Tty: input.tty,
    OpenStdin: true,
    StdinOnce: !input.tty,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    ExposedPorts: exposed,
    Labels: {
      "beaker.managed": "true",
      "beaker.session": input.sessionId,
      "beaker.name": input.name,
      "beaker.user": user.name,
      "beaker.uid": String(user.uid),
      "beaker.gpus": input.gpus.join(","),
      "beaker.node": input.node,
      "beaker.tty": String(input.tty),
      "beaker.mounts": JSON.stringify(input.shownMounts),
      ...(input.account ? { "beaker.account": input.account } : {}),
      ...(input.slurmJob ? { "beaker.slurm.job": input.slurmJob } : {}),
      ...(input.timeLimit ? { "beaker.time-limit": String(input.timeLimit) } : {}),
      // What it is allowed, so a restarted executor counts it against its user's maxMemoryPerUser.
      ...(input.memoryBytes ? { "beaker.memory": String(input.memoryBytes) } : {}),
      ...(holder ? { [netnsHolderLabel]: holder } : {}),
    },
    HostConfig: {
      Mounts: mounts,
      NetworkMode: holder ? `container:${holder}` : input.network,
      PortBindings: portBindings,
      Init: true,
      Privileged: false,
      SecurityOpt: ["no-new-privileges"],
      CapDrop: user.uid === 0 ? [] : ["ALL"],
      GroupAdd: user.groups.filter((g) => g !== user.gid).map(String),
      ShmSize: shmSizeFor(input.memoryBytes, input.shmBytes),
      ...(input.pidsLimit > 0 ? { PidsLimit: input.pidsLimit } : {}),
      Ulimits: [{ Name: "memlock", Soft: input.memlock, Hard: input.memlock }],
      ...(input.cpus ? { NanoCpus: Math.round(input.cpus * 1e9) } : {}),
      ...(input.memoryBytes ? { Memory: input.memoryBytes } : {}),
      DeviceRequests: input.gpus.length > 0 ? [{ Driver: "nvidia", DeviceIDs: input.gpus, Capabilities: [["gpu"]] }] : [],
      AutoRemove: false,
    },
  };
}
