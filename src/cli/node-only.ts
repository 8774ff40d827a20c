import { existsSync } from "node:fs";
import { defaultExecutorConfigPath, executorSocketPath } from "../config/executor.ts";
import { NotANodeError } from "../errors.ts";
import type { Factory } from "./factory.ts";

/** Whether this machine is a node: an executor's socket or config is here. A laptop or login node has neither. */
export function isNodeMachine(env: Record<string, string | undefined>): boolean {
  return existsSync(executorSocketPath(env)) || existsSync(defaultExecutorConfigPath);
}

/** The executor daemon runs on Linux only (Docker, nvidia-smi, systemd). */
export function requireLinux(command: string, platform: string = process.platform): void {
  if (platform !== "linux") throw new NotANodeError(command, platform);
}

/** For commands that read this node's GPUs: fine on a node, or where nvidia-smi runs (a node being set up). */
export function requireGpuNode(factory: Factory, command: string): void {
  requireLinux(command);
  if (!isNodeMachine(factory.env) && !Bun.which(factory.nvidiaSmiPath())) throw new NotANodeError(command);
}
