import type { IO } from "./io.ts";
import { UserConfigStore, userConfigPath } from "../config/user.ts";
import { executorSocketPath, nvidiaSmiPath } from "../config/executor.ts";
import { ExecutorClient } from "../executor/client.ts";
import { AuthError, ConfigError } from "../errors.ts";
import { ServerClient } from "../server/client.ts";
import { processSpawner, type Spawner } from "../remote/ssh.ts";
import { Timeline } from "../util/trace.ts";
import { releasePublicKey } from "../version.ts";

/** Everything a command may need, built lazily in one place. Tests pass their own. */
export interface Factory {
  io: IO;
  env: Record<string, string | undefined>;
  debug: boolean;
  /** The timeline of this command (`BEAKER_TRACE=1` or `--debug`), printed on stderr at the end; null when off. */
  trace: Timeline | null;
  userConfig(): UserConfigStore;
  executor(): ExecutorClient;
  /** The caller's Beaker token: BEAKER_TOKEN, else user_token in the config; null when logged out. */
  userToken(): string | null;
  /** The Beaker server: BEAKER_SERVER, else the config's server, else the one this node's executor reports to. */
  serverUrl(): Promise<string | null>;
  /** The server with the caller's token; a clear error when there is no server or no token. */
  server(): Promise<ServerClient>;
  nvidiaSmiPath(): string;
  /** How long nvidia-smi may take before it is killed (BEAKER_NVIDIA_SMI_TIMEOUT seconds, default 10). */
  nvidiaSmiTimeoutMs(): number;
  now(): Date;
  /** Starts child processes (ssh to nodes); tests pass one that records what would run. */
  spawn: Spawner;
  /** This beaker's own file (what `upgrade` replaces); tests point it at a copy. */
  execPath: string;
  /** The Ed25519 key release manifests must be signed with (built in); tests use their own. */
  releasePublicKey: string;
}

export function createFactory(io: IO, env: Record<string, string | undefined>, debug: boolean): Factory {
  let store: UserConfigStore | undefined;
  let executor: ExecutorClient | undefined;
  return {
    io,
    env,
    debug,
    trace: debug || env.BEAKER_TRACE === "1" ? new Timeline() : null,
    userConfig() {
      store ??= new UserConfigStore(userConfigPath(env), (message) => io.err.write(`warning: ${message}\n`));
      return store;
    },
    executor() {
      executor ??= new ExecutorClient(executorSocketPath(env), this.userToken(), this.trace);
      return executor;
    },
    userToken() {
      return env.BEAKER_TOKEN || this.userConfig().read().user_token || null;
    },
    async serverUrl() {
      const configured = env.BEAKER_SERVER || this.userConfig().read().server;
      if (configured) return configured.replace(/\/+$/, "");
      return (await this.executor().health())?.server ?? null;
    },
    async server() {
      const url = await this.serverUrl();
      if (!url) throw new ConfigError("no Beaker server is configured: 'beaker config set server https://...' (or set BEAKER_SERVER)");
      const token = this.userToken();
      if (!token) throw new AuthError(`not logged in to ${url}: run 'beaker account login' (or set BEAKER_TOKEN)`);
      return new ServerClient(url, token);
    },
    nvidiaSmiPath: () => nvidiaSmiPath(env),
    nvidiaSmiTimeoutMs: () => {
      const seconds = Number(env.BEAKER_NVIDIA_SMI_TIMEOUT);
      return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 10_000;
    },
    now: () => new Date(),
    spawn: processSpawner,
    execPath: process.execPath,
    releasePublicKey,
  };
}
