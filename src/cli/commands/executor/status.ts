import { defineCommand, jsonOption } from "../../command.ts";
import { printJson } from "../../output.ts";
import { NotANodeError, UnavailableError } from "../../../errors.ts";
import { isNodeMachine } from "../../node-only.ts";

/** The version the file at `path` is now (it may have been upgraded under the running daemon); null if unknown. */
function fileVersion(path: string | null): string | null {
  if (!path) return null;
  try {
    const r = Bun.spawnSync([path, "--version"], { stdout: "pipe", stderr: "ignore", timeout: 5000 });
    return /^beaker (\S+)/.exec(r.stdout.toString())?.[1] ?? null;
  } catch {
    return null;
  }
}

export const executorStatusCommand = defineCommand({
  name: "status",
  summary: "Say whether this node's executor answers, its version, and whether it needs a restart after an upgrade",
  options: [jsonOption],
  async run({ flags, factory }) {
    const client = factory.executor();
    const health = await client.health();
    if (!health && !isNodeMachine(factory.env)) throw new NotANodeError("executor status");
    if (!health) throw new UnavailableError(`no executor answers on ${client.socketPath}: start it with 'systemctl start beaker-executor'`);
    const onDisk = fileVersion(health.binary);
    const restartNeeded = onDisk !== null && onDisk !== health.version;
    if (flags.json) return void printJson(factory.io, { running: true, socket: client.socketPath, ...health, binaryVersion: onDisk, restartNeeded });
    factory.io.out.write(`executor ${health.version} (${health.commit}) running on node ${health.node}, pid ${health.pid}, socket ${client.socketPath}\n`);
    if (restartNeeded) {
      factory.io.out.write(`${health.binary} is now ${onDisk}, not the version the executor runs: restart it with 'sudo beaker executor restart' (sessions run on; terminals reconnect)\n`);
    }
  },
});
