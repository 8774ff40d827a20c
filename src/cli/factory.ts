import type { IO } from "./io.ts";
import { UserConfigStore, userConfigPath } from "../config/user.ts";

/** Everything a command may need, built lazily in one place. Tests pass their own. */
export interface Factory {
  io: IO;
  env: Record<string, string | undefined>;
  debug: boolean;
  userConfig(): UserConfigStore;
  now(): Date;
}

export function createFactory(io: IO, env: Record<string, string | undefined>, debug: boolean): Factory {
  let store: UserConfigStore | undefined;
  return {
    io,
    env,
    debug,
    userConfig() {
      store ??= new UserConfigStore(userConfigPath(env), (message) => io.err.write(`warning: ${message}\n`));
      return store;
    },
    now: () => new Date(),
  };
}
