import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname } from "node:path";
import { writeFileAtomic } from "../../../util/write-atomic.ts";
import { addHostBlock, buildHostBlock, ensureHostKey, sshPaths } from "../../../ssh/client-config.ts";
import { currentLoginUser } from "../../../ssh/login.ts";
import { defineCommand } from "../../command.ts";
import type { IO } from "../../io.ts";

export interface SshConfigOptions {
  write: boolean;
  home: string;
  user: string;
  /** The beaker that ssh runs as ProxyCommand: this binary's full path (GUI editors start ssh with a short PATH). */
  beaker: string;
}

/** Prints the `Host *.beaker` block, or adds it once to ~/.ssh/config. Makes the host key the first time. */
export async function runSshConfig(options: SshConfigOptions, io: IO): Promise<number> {
  const paths = sshPaths(options.home);
  await ensureHostKey(paths);
  const block = buildHostBlock({ beaker: options.beaker, user: options.user, knownHosts: paths.knownHosts });
  if (!options.write) {
    io.out.write(block);
    return 0;
  }
  const existing = existsSync(paths.sshConfig) ? readFileSync(paths.sshConfig, "utf8") : "";
  const updated = addHostBlock(existing, block);
  if (updated === null) {
    io.err.write(`${paths.sshConfig} already has a Host *.beaker block; nothing changed\n`);
    return 0;
  }
  mkdirSync(dirname(paths.sshConfig), { recursive: true, mode: 0o700 });
  writeFileAtomic(paths.sshConfig, updated, existing ? statSync(paths.sshConfig).mode & 0o777 : 0o600);
  io.err.write(`Added a Host *.beaker block to ${paths.sshConfig}: 'ssh NAME.beaker' now reaches your session NAME\n`);
  return 0;
}

export const sessionSshConfigCommand = defineCommand({
  name: "ssh-config",
  summary: "Print (or --write to ~/.ssh/config) the Host *.beaker block: ssh, scp, rsync and VS Code into sessions",
  options: [{ flags: "--write", description: "Add the block to ~/.ssh/config (once; a marker comment shows it)", kind: "boolean" }],
  examples: ["beaker session ssh-config --write", "ssh train.beaker", "code --remote ssh-remote+train.beaker /home/me"],
  async run({ flags, factory }) {
    const bun = /\/bun(-\w+)?$/.test(process.execPath);
    return runSshConfig(
      { write: flags.write ?? false, home: factory.env.HOME || homedir(), user: currentLoginUser(factory.env).name, beaker: bun ? "beaker" : process.execPath },
      factory.io,
    );
  },
});
