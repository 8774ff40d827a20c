import { realpathSync, statSync, type Stats } from "node:fs";
import { homedir } from "node:os";
import { loadExecutorConfig } from "../../config/executor.ts";
import { ConfigError, UsageError } from "../../errors.ts";
import { detectPlatform, pickTarget } from "../../update/manifest.ts";
import { isVersion } from "../../update/semver.ts";
import { readStateFile, recordLatest, statePath, writeStateFile } from "../../update/notifier.ts";
import { buildInfo, defaultUpdateUrl } from "../../version.ts";
import { defineCommand } from "../command.ts";
import type { Factory } from "../factory.ts";
import { createProgress } from "../progress.ts";
import { restartExecutor } from "./executor/shared.ts";

/** BEAKER_UPDATE_URL, then the user's update_url, then the node's (executor config), then the server's, then the built-in one. */
export async function resolveUpdateUrl(factory: Factory): Promise<string> {
  const fromUser = factory.env.BEAKER_UPDATE_URL || factory.userConfig().read().update_url;
  if (fromUser) return fromUser;
  try {
    const node = loadExecutorConfig().updateUrl;
    if (node) return node;
  } catch {}
  const server = await factory.serverUrl().catch(() => null);
  if (server) return `${server}/releases`;
  if (defaultUpdateUrl) return defaultUpdateUrl;
  throw new ConfigError("no update URL is known: 'beaker config set update_url https://...' (or set BEAKER_UPDATE_URL)");
}

function thisBinary(execPath: string): string {
  if (/\/bun(-\w+)?$/.test(execPath)) throw new UsageError("beaker upgrade replaces a built beaker binary; this is running from source");
  return realpathSync(execPath);
}

export const upgradeCommand = defineCommand({
  name: "upgrade",
  summary: "Update this beaker binary from the release channel, verified end to end (or --rollback)",
  options: [
    { flags: "--version <version>", description: "Install this version (also an older one)", kind: "string" },
    { flags: "--channel <channel>", description: "stable or canary", default: "stable", kind: "string" },
    { flags: "--dry-run", description: "Say what would change and stop", kind: "boolean" },
    { flags: "--force", description: "Install even when already current", kind: "boolean" },
    { flags: "--rollback", description: "Put the previous binary (beaker.old) back", kind: "boolean" },
    { flags: "-y, --yes", description: "Do not ask", kind: "boolean" },
  ],
  examples: ["beaker upgrade", "beaker upgrade --dry-run", "sudo beaker upgrade --channel canary --yes", "beaker upgrade --rollback"],
  async run({ flags, factory }) {
    const { io } = factory;
    const channel = flags.channel;
    if (!["stable", "canary"].includes(channel)) throw new UsageError(`--channel must be stable or canary, not "${channel}"`);
    const version = flags.version ?? null;
    if (version && !isVersion(version)) throw new UsageError(`--version ${version} is not a version like 1.2.3`);
    const binary = thisBinary(factory.execPath);
    // The file as it is before the upgrade: the executor is restarted only if it runs this one.
    const replaced = statSync(binary);
    const progress = createProgress(io);
    const confirm = async (question: string) => {
      if (flags.yes || flags.dryRun) return true;
      if (!io.canPrompt()) throw new UsageError(`${question.replace(/\?$/, "")}: pass --yes to do it without a terminal`);
      const { confirm: ask, isCancel } = await import("@clack/prompts");
      const answer = await ask({ message: question, initialValue: true });
      return !isCancel(answer) && answer === true;
    };
    const say = (line: string) => io.err.write(`${line}\n`);
    // The upgrade pipeline loads for this command alone, not at every CLI start.
    const { runRollback, runUpgrade } = await import("../../update/upgrade.ts");
    if (flags.rollback) return void (await runRollback({ binary, currentVersion: buildInfo.version, say, confirm }));
    const installed = await runUpgrade(
      { version, channel, dryRun: flags.dryRun ?? false, force: flags.force ?? false },
      {
        binary,
        currentVersion: buildInfo.version,
        target: pickTarget(detectPlatform()),
        publicKey: factory.releasePublicKey,
        baseUrl: await resolveUpdateUrl(factory),
        say,
        confirm,
        progress: (p, v) => {
          const width = 24;
          const filled = Math.round((p.received / p.total) * width);
          progress.update(`Downloading beaker ${v}  [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(p.received / 1e6).toFixed(1)}/${(p.total / 1e6).toFixed(1)} MB`);
        },
        done: () => progress.done(),
      },
    );
    if (installed) await offerRestart(factory, { binary, replaced, installed }, { yes: flags.yes ?? false, confirm, say });
  },
});

/**
 * After an upgrade: an executor that runs the replaced file, under a systemd unit that starts it again from the new
 * one, is offered to root for the graceful restart (sessions run on, queued requests keep their places, attached
 * terminals reconnect); anyone else is told the command. Any other executor is left running, with what to run.
 */
async function offerRestart(
  factory: Factory,
  { binary, replaced, installed }: { binary: string; replaced: Stats; installed: string },
  { yes, confirm, say }: { yes: boolean; confirm: (question: string) => Promise<boolean>; say: (line: string) => void },
): Promise<void> {
  const executor = await factory.executor().health();
  if (!executor || executor.version === installed) return;
  const { decideRestart, lookAtExecutor } = await import("../../update/executor-restart.ts");
  const decision = decideRestart(lookAtExecutor(executor, binary, replaced), binary);
  if (!decision.restart) return say(decision.line);
  const line = `this node's executor still runs ${executor.version} from the old file`;
  const hint = "restart it with 'sudo beaker executor restart' (sessions run on; attached terminals reconnect)";
  // Asked on a terminal; without one only --yes restarts it.
  const question = `${line}. Restart it now? Sessions run on, queued requests keep their places, attached terminals reconnect`;
  const restart = process.getuid?.() === 0 && (yes || factory.io.canPrompt()) && (await confirm(question));
  if (!restart) return say(`${line}: ${hint}`);
  await restartExecutor(factory.executor(), say);
}

/** Run in the background by the notifier: looks up the channel's newest version and remembers it. Silent. */
export const updateCheckCommand = defineCommand({
  name: "update-check",
  summary: "Internal: the update notifier's background check",
  hidden: true,
  async run({ factory }) {
    const path = statePath(factory.env.HOME || homedir());
    await recordLatest(
      { now: Date.now, readState: () => readStateFile(path), writeState: (state) => writeStateFile(path, state) },
      async () => {
        const { fetchManifest } = await import("../../update/upgrade.ts");
        return (await fetchManifest(await resolveUpdateUrl(factory), "stable", null, factory.releasePublicKey, 3000)).manifest.version;
      },
    );
  },
});
