import type { IO } from "./io.ts";
import { UserConfigStore, userConfigPath } from "../config/user.ts";
import { executorSocketPath, nvidiaSmiPath } from "../config/executor.ts";
import { ExecutorClient } from "../executor/client.ts";

/** Everything a command may need, built lazily in one place. Tests pass their own. */
export interface Factory {
  io: IO;
  env: Record<string, string | undefined>;
  debug: boolean;
  userConfig(): UserConfigStore;
  executor(): ExecutorClient;
  nvidiaSmiPath(): string;
  /** How long nvidia-smi may take before it is killed (BEAKER_NVIDIA_SMI_TIMEOUT seconds, default 10). */
  nvidiaSmiTimeoutMs(): number;
  now(): Date;
}

export function createFactory(io: IO, env: Record<string, string | undefined>, debug: boolean): Factory {
  let store: UserConfigStore | undefined;
  let executor: ExecutorClient | undefined;
  return {
    io,
    env,
    debug,
    userConfig() {
      store ??= new UserConfigStore(userConfigPath(env), (message) => io.err.write(`warning: ${message}\n`));
      return store;
    },
    executor() {
      executor ??= new ExecutorClient(executorSocketPath(env));
      return executor;
    },
    nvidiaSmiPath: () => nvidiaSmiPath(env),
    nvidiaSmiTimeoutMs: () => {
      const seconds = Number(env.BEAKER_NVIDIA_SMI_TIMEOUT);
      return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 10_000;
    },
    now: () => new Date(),
  };
}
