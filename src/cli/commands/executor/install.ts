import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { defaultExecutorConfigPath, defaultExecutorConfig } from "../../../config/executor.ts";
import { writeFileAtomic } from "../../../util/write-atomic.ts";
import { BeakerError } from "../../../errors.ts";
import { defineCommand } from "../../command.ts";
import { requireLinux } from "../../node-only.ts";

export function renderUnit(binary: string, configPath: string): string {
  return `[Unit]
Description=Beaker sessions node executor
After=docker.service network-online.target
Requires=docker.service

[Service]
ExecStart=${binary} executor run --config ${configPath}
Restart=always
RestartSec=2
# Sessions are containers owned by Docker: stopping the executor must not stop them.
KillMode=process
# SIGTERM drains: creates in flight finish (20 s at most), the queue is written down, clients are told to reconnect.
TimeoutStopSec=60

[Install]
WantedBy=multi-user.target
`;
}

export function renderDefaultConfig(): string {
  const d = defaultExecutorConfig();
  return `# Beaker node executor. Every key is optional; these are the defaults.
socket: ${d.socket}
stateDir: ${d.stateDir}
dockerSocket: ${d.dockerSocket}
nvidiaSmi: ${d.nvidiaSmi}
defaultImage: ${d.defaultImage}
mountPaths: [/net]
# sessionHome: /data/homes     # homes under <sessionHome>/<user> instead of the user's own
# shmSize: 8g                  # default: half the memory limit, or 8 GiB
# server: https://beaker.example.org
# tokenFile: /etc/beaker/executor-token
# cluster: my-cluster
# nodeName: ${d.nodeName}
# idleTimeout: 0               # stop sessions nobody attached to for this long ("12h"); 0 = never
`;
}

export const executorInstallCommand = defineCommand({
  name: "install",
  summary: "Write /etc/beaker/config.yml (when missing) and the beaker-executor systemd unit",
  options: [
    { flags: "--config <path>", description: "Executor config file", default: defaultExecutorConfigPath, kind: "string" },
    { flags: "--unit-dir <dir>", description: "Where to write the unit", default: "/etc/systemd/system", kind: "string" },
  ],
  async run({ flags, factory }) {
    requireLinux("executor install");
    if (process.getuid?.() !== 0) throw new BeakerError("run 'sudo beaker executor install': it writes to /etc");
    const configPath = flags.config;
    const unitDir = flags.unitDir;
    const { io } = factory;
    if (!existsSync(configPath)) {
      mkdirSync(dirname(configPath), { recursive: true, mode: 0o755 });
      writeFileAtomic(configPath, renderDefaultConfig(), 0o644);
      io.err.write(`wrote ${configPath}\n`);
    } else io.err.write(`kept the existing ${configPath}\n`);
    mkdirSync(unitDir, { recursive: true });
    const unit = `${unitDir}/beaker-executor.service`;
    writeFileAtomic(unit, renderUnit(process.execPath, configPath), 0o644);
    io.err.write(`wrote ${unit}\nstart it with: systemctl daemon-reload && systemctl enable --now beaker-executor\n`);
  },
});
