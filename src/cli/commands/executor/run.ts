import { defaultExecutorConfigPath, loadExecutorConfig } from "../../../config/executor.ts";
import { BeakerError } from "../../../errors.ts";
import { defineCommand } from "../../command.ts";
import { requireLinux } from "../../node-only.ts";

export const executorRunCommand = defineCommand({
  name: "run",
  summary: "Run the node executor in the foreground (as root; systemd runs this)",
  options: [
    { flags: "--config <path>", description: "Executor config file", default: defaultExecutorConfigPath, kind: "string" },
    { flags: "--trace", description: "Log where each session create spends its time (ms per phase)", kind: "boolean" },
  ],
  async run({ flags }) {
    requireLinux("executor run");
    if (process.getuid?.() !== 0) throw new BeakerError("the executor must run as root (it owns Docker and the GPUs)");
    const path = flags.config;
    const config = loadExecutorConfig(path, flags.config !== undefined && path !== defaultExecutorConfigPath);
    const { runExecutor } = await import("../../../executor/daemon.ts");
    await runExecutor(config, { trace: flags.trace ?? false });
  },
});
