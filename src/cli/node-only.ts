import { existsSync } from "node:fs";
import { defaultExecutorConfigPath, executorSocketPath } from "../config/executor.ts";
import { BeakerError } from "../errors.ts";
import type { Factory } from "./factory.ts";

/** Whether this machine is a node: an executor's socket or config is here. A laptop or login node has neither. */
export function isNodeMachine(env: Record<string, string | undefined>): boolean {
  return existsSync(executorSocketPath(env)) || existsSync(defaultExecutorConfigPath);
}

/** A command that only means something on a GPU node, run where there is none: one line that says so. */
export class NotANodeError extends BeakerError {
  override name = "NotANodeError";
  constructor(command: string, platform: string = process.platform) {
    const here = platform === "linux" ? "this machine has no executor" : `this is ${platform === "darwin" ? "a Mac" : platform}`;
    super(`'beaker ${command}' runs on a Linux GPU node and ${here}; from here, 'beaker cluster nodes CLUSTER' shows the nodes and their GPUs`);
  }
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
