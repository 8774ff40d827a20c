import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../../../errors.ts";
import { Git } from "../../../git/git.ts";
import { parseHost } from "../../../git/protocol.ts";
import type { SetupDeps } from "../../../git/setup.ts";
import { BeakerCredentialStore } from "../../../git/store.ts";
import type { Factory } from "../../factory.ts";

/**
 * The `beaker` git should run as its helper: /usr/local/bin/beaker when it is there (the path every session container
 * has too, and one an upgrade replaces in place), else this binary's own path as installed (not a versioned one).
 */
export function stableBeakerCommand(): string {
  return existsSync("/usr/local/bin/beaker") ? "/usr/local/bin/beaker" : process.execPath;
}

export function gitDeps(factory: Factory): SetupDeps {
  const home = factory.env.HOME || homedir();
  return {
    git: new Git({ ...factory.env, HOME: home }),
    home,
    store: new BeakerCredentialStore(join(home, ".beaker", "git-credentials")),
    beakerCommand: stableBeakerCommand(),
  };
}

/** `--host` as git names it (protocol, host[:port]); a usage error when it is not a host. */
export function hostFlag(host: string): { protocol: string; host: string } {
  try {
    return parseHost(host);
  } catch (err) {
    throw new UsageError(`--host: ${(err as Error).message}`);
  }
}
