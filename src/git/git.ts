import { BeakerError } from "../errors.ts";
import { formatCredential, type Credential } from "./protocol.ts";

/** The `git` program, run without prompts; secrets only ever go through stdin. */
export class Git {
  constructor(
    private readonly env: Record<string, string | undefined>,
    private readonly binary = "git",
  ) {}

  run(args: string[], stdin?: string): { code: number; stdout: string; stderr: string } {
    let proc;
    try {
      proc = Bun.spawnSync([this.binary, ...args], {
        env: { ...this.env, GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "", SSH_ASKPASS: "" } as Record<string, string>,
        stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
        stdout: "pipe",
        stderr: "pipe",
      });
    } catch {
      throw new BeakerError("git is not installed: install it first (Debian: apt install git)");
    }
    return { code: proc.exitCode ?? 1, stdout: proc.stdout.toString(), stderr: proc.stderr.toString() };
  }

  getGlobal(key: string): string | null {
    const r = this.run(["config", "--global", "--get", key]);
    return r.code === 0 ? r.stdout.replace(/\n$/, "") : null;
  }

  getAllGlobal(key: string): string[] {
    const r = this.run(["config", "--global", "--get-all", key]);
    return r.code === 0 ? r.stdout.split("\n").filter((l, i, all) => i < all.length - 1 || l !== "") : [];
  }

  setGlobal(key: string, value: string, add = false): void {
    const r = this.run(["config", "--global", ...(add ? ["--add"] : []), key, value]);
    if (r.code !== 0) throw new BeakerError(`git config ${key} failed: ${r.stderr.trim()}`);
  }

  unsetAllGlobal(key: string): void {
    this.run(["config", "--global", "--unset-all", key]);
  }

  /** `git credential approve|reject`: the helpers configured for the URL store or forget it. */
  credential(action: "approve" | "reject", fields: Credential): void {
    const r = this.run(["credential", action], `${formatCredential(fields)}\n`);
    if (r.code !== 0) throw new BeakerError(`git credential ${action} failed: ${r.stderr.trim().split("\n")[0]}`);
  }
}
