import { spawn } from "node:child_process";
import { homedir } from "node:os";
import { notifyAfterCommand, readStateFile, statePath, writeStateFile, type NotifierDeps } from "../update/notifier.ts";
import { buildInfo } from "../version.ts";
import type { Factory } from "./factory.ts";

/** The notifier's dependencies on this machine: the state file in ~/.beaker, the real clock, a detached `beaker update-check`. */
export function notifierDeps(factory: Factory): NotifierDeps {
  const env = factory.env;
  const path = statePath(env.HOME || homedir());
  const fromSource = /\/bun(-\w+)?$/.test(process.execPath);
  return {
    now: Date.now,
    readState: () => readStateFile(path),
    writeState: (state) => writeStateFile(path, state),
    spawnCheck: fromSource
      ? null
      : () => {
          try {
            spawn(process.execPath, ["update-check"], { detached: true, stdio: "ignore", env: env as NodeJS.ProcessEnv }).unref();
          } catch {}
        },
    env: { tty: factory.io.isStderrTTY, ci: Boolean(env.CI) && env.CI !== "false", disabled: Boolean(env.BEAKER_NO_UPDATE_NOTIFIER) },
    current: buildInfo.version,
    show: (text) => factory.io.err.write(text),
  };
}

/** After every command but the update commands themselves. */
export function afterCommand(factory: Factory, command: string | undefined): void {
  if (command === "upgrade" || command === "update-check") return;
  notifyAfterCommand(notifierDeps(factory));
}
