import { BeakerError } from "../errors.ts";
import { formatCredential, type Credential } from "./protocol.ts";

export interface GitRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** How a child process is started: every git command goes through one, so tests can see each argv, env and stdin. */
export type GitSpawner = (argv: string[], env: Record<string, string>, stdin: string | undefined) => GitRun;

export const spawnGit: GitSpawner = (argv, env, stdin) => {
  const proc = Bun.spawnSync(argv, { env, stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  return { code: proc.exitCode ?? 1, stdout: proc.stdout.toString(), stderr: proc.stderr.toString() };
};

/** The `git` program, run without prompts; secrets only ever go through stdin. */
export class Git {
  constructor(
    private readonly env: Record<string, string | undefined>,
    private readonly binary = "git",
    private readonly spawn: GitSpawner = spawnGit,
  ) {}

  run(args: string[], stdin?: string): GitRun {
    const env = { ...this.env, GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "", SSH_ASKPASS: "" } as Record<string, string>;
    try {
      return this.spawn([this.binary, ...args], env, stdin);
    } catch {
      throw new BeakerError("git is not installed: install it first (Debian: apt install git)");
    }
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
