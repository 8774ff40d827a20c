import { existsSync } from "node:fs";

/** The release target `bun run build` compiles for on this machine (what `beaker --version` then names). */
export function hostTarget(): string {
  const arch = process.arch === "arm64" ? "arm64" : "x64";
  if (process.platform === "darwin") return `darwin-${arch}`;
  const musl = existsSync("/etc/alpine-release");
  return `linux-${arch}${musl ? "-musl" : ""}`;
}
