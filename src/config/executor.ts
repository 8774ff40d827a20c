import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { ConfigError } from "../errors.ts";
import { suggest } from "../util/suggest.ts";
import { parseSize } from "./size.ts";
import { defaultSessionMemory, defaultUserCaps, parseMemoryAmount, userCapFields, type MemoryAmount, type UserCapsConfig } from "./limits.ts";
import { configSeconds, parseGpuIdle, parseMaxDuration, parseSampleInterval, type GpuIdlePolicy } from "./gpu-use.ts";
import { parseYamlMapping } from "./yaml-file.ts";

export const defaultExecutorConfigPath = "/etc/beaker/config.yml";
export const defaultSocketPath = "/run/beaker/executor.sock";
export const defaultImage = "allenai/base:cuda11.2-ubuntu20.04";
export const defaultSessionNetwork = "beaker-sessions";

export interface ExecutorConfig extends UserCapsConfig {
  socket: string;
  stateDir: string;
  dockerSocket: string;
  nvidiaSmi: string;
  defaultImage: string;
  mountPaths: string[];
  sessionHome: string | null;
  /** Bytes; null means half the memory limit or 8 GiB. */
  shmSize: number | null;
  server: string | null;
  tokenFile: string;
  /** Node link: a Beaker account -> the local account its relayed requests run as (others: the same name). */
  linkUsers: Record<string, string>;
  cluster: string | null;
  nodeName: string;
  /** Seconds a session may go unattached before it is stopped; 0 = never. */
  idleTimeout: number;
  /** Seconds finished sessions are remembered. */
  historyRetention: number;
  /** Where `beaker upgrade` on this node looks for releases (after the user's own update_url). */
  updateUrl: string | null;
  /** Processes a session may have at once; 0 = no limit. */
  pidsLimit: number;
  /** A session's memory limit when it asks for none: bytes, or a share of the node's memory. */
  defaultMemory: MemoryAmount;
  /** The largest /dev/shm a session may have, bytes; null = its memory limit. */
  maxShmSize: number | null;
  /** Requests one user may have waiting in the queue at once. */
  maxQueuedPerUser: number;
  /** Seconds after a restart during which waiting callers may come back with their tickets and keep their places. */
  queueGrace: number;
  /** GPUs one user may hold (and wait for) at once; null = no limit. */
  maxGpusPerUser: number | null;
  /**
   * Whether a session's --port is published on the node's host network. "none" (the default): never; the owner
   * reaches it through the executor (`session port-forward`) or `ssh -L`. "host": Docker publishes it on
   * `publishAddress`, where everyone who can reach that address reaches it (the admin's explicit choice).
   */
  publish: "none" | "host";
  /** With `publish: host`: the host address ports are published on (127.0.0.1: every local user; 0.0.0.0: the network). */
  publishAddress: string;
  /**
   * The Docker network sessions run on. The default one is made by the executor with traffic between containers
   * off, so sessions cannot reach each other's ports; "none" gives sessions no network at all.
   */
  sessionNetwork: string;
  /** Who decides which GPUs a session gets: Beaker's own queue, or Slurm (each session runs in its caller's Slurm job). */
  scheduler: "native" | "slurm";
  slurm: SlurmSettings;
  /** Seconds between two samples of every GPU's utilization and memory (one nvidia-smi call each). */
  gpuSampleInterval: number;
  /** Reclaiming sessions whose GPUs stay idle; null = off. */
  gpuIdle: GpuIdlePolicy | null;
  /** Seconds any session may run; null = no limit. `session create --time` asks for less. */
  maxDuration: number | null;
  /** Terminals (attach and exec) one user may have open on this node at once; root is not counted. */
  maxTerminalsPerUser: number;
}

/** The `slurm:` section: defaults for the jobs sessions ask for, and how this node pairs jobs with sessions. */
export interface SlurmSettings {
  partition: string | null;
  account: string | null;
  qos: string | null;
  /** A time limit in Slurm's own format ("30", "4:00:00", "2-00:00:00"), passed to Slurm as it is. */
  time: string | null;
  /** Slurm's name for this node (NodeName in slurm.conf); default this host's short name. */
  node: string;
  /** Seconds a job of Beaker's may run on this node with no session before it is cancelled. */
  orphanGrace: number;
}

export function defaultExecutorConfig(): ExecutorConfig {
  return {
    socket: defaultSocketPath,
    stateDir: "/var/lib/beaker",
    dockerSocket: "/var/run/docker.sock",
    nvidiaSmi: "nvidia-smi",
    defaultImage,
    mountPaths: ["/net"],
    sessionHome: null,
    shmSize: null,
    server: null,
    tokenFile: "/etc/beaker/executor-token",
    linkUsers: {},
    cluster: null,
    nodeName: hostname(),
    idleTimeout: 0,
    historyRetention: 7 * 24 * 3600,
    updateUrl: null,
    pidsLimit: 32768,
    defaultMemory: defaultSessionMemory,
    maxShmSize: null,
    maxQueuedPerUser: 8,
    queueGrace: 30,
    maxGpusPerUser: null,
    publish: "none",
    publishAddress: "127.0.0.1",
    sessionNetwork: defaultSessionNetwork,
    scheduler: "native",
    slurm: { partition: null, account: null, qos: null, time: null, node: hostname().split(".")[0]!, orphanGrace: 120 },
    gpuSampleInterval: 30,
    gpuIdle: null,
    maxDuration: null,
    maxTerminalsPerUser: 64,
    ...defaultUserCaps,
  };
}

type Field = (value: unknown) => unknown;

const size: Field = (v) => {
  const bytes = parseSize(String(v));
  if (bytes === null || bytes <= 0) throw new Error('must be a size like "8g" or "512m"');
  return bytes;
};
const count =
  (min: number): Field =>
  (v) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) throw new Error(`must be a whole number, ${min} or more`);
    return v;
  };

const absolutePath: Field = (v) => {
  if (typeof v !== "string" || !v.startsWith("/")) throw new Error("must be an absolute path");
  return v;
};
const nonEmpty: Field = (v) => {
  if (typeof v !== "string" || v.trim() === "") throw new Error("must be a non-empty string");
  return v.trim();
};
const optional =
  (field: Field): Field =>
  (v) =>
    v === null || v === undefined || v === "" ? null : field(v);
const seconds: Field = configSeconds;

/** `linkUsers`: Beaker account names (the server's rule) to local account names; never root (the link refuses uid 0 anyway). */
const parseLinkUsers: Field = (v) => {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("must be a mapping of Beaker account names to local account names");
  const out: Record<string, string> = {};
  for (const [beaker, local] of Object.entries(v as Record<string, unknown>)) {
    if (!/^[a-z_][a-z0-9_.-]{0,31}$/.test(beaker)) throw new Error(`has "${beaker}", which is not a Beaker account name`);
    if (typeof local !== "string" || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$/.test(local)) throw new Error(`maps ${beaker} to something that is not a local account name`);
    if (local === "root") throw new Error(`maps ${beaker} to root: relayed requests never run as root`);
    // Defined, not assigned: an account may be named like an object's own property ("__proto__").
    Object.defineProperty(out, beaker, { value: local, enumerable: true, writable: true, configurable: true });
  }
  return out;
};

/** A Slurm name (partition, account, QOS; a partition may be a comma-separated list). */
export const slurmNamePattern = /^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$/;
/** Slurm's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or UNLIMITED. */
export const slurmTimePattern = /^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+(:\d{1,2}){0,2}|UNLIMITED|INFINITE)$/;

const slurmSection: Field = (v) => {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("must be a mapping (partition, account, qos, time, node, orphanGrace)");
  const out: SlurmSettings = { ...defaultExecutorConfig().slurm };
  for (const [key, value] of Object.entries(v as Record<string, unknown>)) {
    const name = (pattern: RegExp, shape: string) =>
      optional((x) => {
        const text = String(x).trim();
        if (!pattern.test(text)) throw new Error(`${key} must be ${shape}`);
        return text;
      })(value) as string | null;
    if (key === "partition" || key === "account" || key === "qos") out[key] = name(slurmNamePattern, "a Slurm name");
    else if (key === "time") out.time = name(slurmTimePattern, 'a Slurm time limit like "60", "4:00:00" or "2-00:00:00"');
    else if (key === "node") out.node = name(/^[A-Za-z0-9_.-]+$/, "a Slurm node name") ?? out.node;
    else if (key === "orphanGrace") out.orphanGrace = seconds(value) as number;
    else {
      const near = suggest(key, ["partition", "account", "qos", "time", "node", "orphanGrace"]);
      throw new Error(`has an unknown key "${key}"${near ? ` (did you mean "${near}"?)` : ""}`);
    }
  }
  return out;
};

const fields: Record<keyof ExecutorConfig, Field> = {
  socket: absolutePath,
  stateDir: absolutePath,
  dockerSocket: absolutePath,
  nvidiaSmi: nonEmpty,
  defaultImage: nonEmpty,
  mountPaths: (v) => {
    if (!Array.isArray(v)) throw new Error("must be a list of absolute paths");
    return v.map((p) => absolutePath(p));
  },
  sessionHome: optional(absolutePath),
  shmSize: optional(size),
  pidsLimit: count(0),
  defaultMemory: parseMemoryAmount,
  maxShmSize: optional(size),
  maxQueuedPerUser: count(1),
  queueGrace: seconds,
  maxGpusPerUser: optional(count(0)),
  publish: (v) => {
    if (v !== "none" && v !== "host") throw new Error('must be "none" (ports are reached through the executor) or "host" (published on publishAddress)');
    return v;
  },
  publishAddress: (v) => {
    if (typeof v !== "string" || !/^(\d{1,3}\.){3}\d{1,3}$|^[0-9a-fA-F:]+$/.test(v.trim())) throw new Error('must be an IP address like "127.0.0.1" or "0.0.0.0"');
    return v.trim();
  },
  sessionNetwork: (v) => {
    if (typeof v !== "string" || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(v)) throw new Error("must be a Docker network name");
    return v;
  },
  server: optional((v) => {
    if (typeof v !== "string" || !/^https?:\/\//.test(v)) throw new Error("must be an http:// or https:// URL");
    return v.replace(/\/+$/, "");
  }),
  tokenFile: absolutePath,
  linkUsers: parseLinkUsers,
  scheduler: (v) => {
    if (v !== "native" && v !== "slurm") throw new Error('must be "native" or "slurm"');
    return v;
  },
  slurm: slurmSection,
  cluster: optional(nonEmpty),
  nodeName: nonEmpty,
  idleTimeout: seconds,
  gpuSampleInterval: parseSampleInterval,
  gpuIdle: parseGpuIdle,
  maxDuration: parseMaxDuration,
  maxTerminalsPerUser: count(1),
  historyRetention: seconds,
  updateUrl: optional((v) => {
    if (typeof v !== "string" || !/^https?:\/\//.test(v)) throw new Error("must be an http:// or https:// URL");
    return v.replace(/\/+$/, "");
  }),
  ...userCapFields,
};

/** Validates a parsed config mapping; every problem names the file, the key and the reason. */
export function parseExecutorConfig(raw: Record<string, unknown>, file: string): ExecutorConfig {
  const config = defaultExecutorConfig() as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(raw)) {
    const field = fields[key as keyof ExecutorConfig];
    if (!field) {
      const near = suggest(key, Object.keys(fields));
      throw new ConfigError(`${file}: unknown key "${key}"${near ? ` (did you mean "${near}"?)` : ""}`);
    }
    try {
      config[key] = field(value);
    } catch (err) {
      throw new ConfigError(`${file}: ${key} ${(err as Error).message}`);
    }
  }
  // Ports were published on publishAddress by default before: an address alone must not silently stop publishing.
  if ("publishAddress" in raw && config.publish !== "host") throw new ConfigError(`${file}: publishAddress applies only with "publish: host" (ports are no longer published by default); add it, or remove publishAddress`);
  return config as unknown as ExecutorConfig;
}

/** Reads the executor config; a missing file means the defaults. */
export function loadExecutorConfig(path = defaultExecutorConfigPath, required = false): ExecutorConfig {
  if (!existsSync(path)) {
    if (required) throw new ConfigError(`${path} does not exist`);
    return defaultExecutorConfig();
  }
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read ${path}: ${(err as Error).message}`);
  }
  return parseExecutorConfig(parseYamlMapping(text, path), path);
}

/** Where the CLI finds the executor: BEAKER_EXECUTOR_SOCKET, else the config's socket, else the default. */
export function executorSocketPath(env: Record<string, string | undefined>): string {
  if (env.BEAKER_EXECUTOR_SOCKET) return env.BEAKER_EXECUTOR_SOCKET;
  try {
    return loadExecutorConfig().socket;
  } catch {
    return defaultSocketPath;
  }
}

/** The nvidia-smi to run: BEAKER_NVIDIA_SMI, else the executor config's nvidiaSmi, else nvidia-smi on PATH. */
export function nvidiaSmiPath(env: Record<string, string | undefined>): string {
  if (env.BEAKER_NVIDIA_SMI) return env.BEAKER_NVIDIA_SMI;
  try {
    return loadExecutorConfig().nvidiaSmi;
  } catch {
    return "nvidia-smi";
  }
}
