/**
 * Real OpenSSH on 127.0.0.1 for the remote tests: an sshd per "node" (Debian's openssh-server, run as root with its
 * own config and host key in a temp dir), each setting BEAKER_EXECUTOR_SOCKET and a private user config for its
 * sessions, with `beaker` on its PATH; and a "laptop": the test user with a key pair, a ~/.ssh/config naming the nodes
 * (the user's own is put back afterwards) and no executor. Both sides log the argv and environment of every `ssh` and
 * `beaker` they start, so tests can assert what a process was given.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { beakerBinary, eventually, removeDir, stopProcess, tempDir } from "./harness.ts";
import { freePort } from "./server-harness.ts";
import { testUser } from "./executor-harness.ts";

const home = `/home/${testUser}`;
const uid = Number(Bun.spawnSync(["id", "-u", testUser]).stdout.toString());
const gid = Number(Bun.spawnSync(["id", "-g", testUser]).stdout.toString());

/** A shell script that appends its argv and environment to `log`, then runs `target` with the same arguments. */
function loggingWrapper(path: string, target: string, log: string): void {
  writeFileSync(
    path,
    `#!/bin/sh\n{ printf 'argv:'; for a in "$@"; do printf ' [%s]' "$a"; done; printf '\\n'; env | sed 's/^/env: /'; } >>${log}\nexec ${target} "$@"\n`,
    { mode: 0o755 },
  );
  writeFileSync(log, "", { mode: 0o666 });
  chmodSync(log, 0o666);
}

function ownedDir(path: string): string {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  chownSync(path, uid, gid);
  return path;
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** One "node": sshd on 127.0.0.1:port whose sessions find `beaker` and the given executor. */
export class TestSshNode {
  readonly dir = tempDir("beaker-sshd-");
  readonly beakerLog = join(this.dir, "beaker-calls.log");
  /** The user config `beaker` uses on this node (BEAKER_CONFIG), apart from the laptop's. */
  readonly userConfig: string;
  port = 0;
  private proc: ReturnType<typeof Bun.spawn> | null = null;

  constructor(
    readonly name: string,
    executorSocket: string,
  ) {
    this.userConfig = join(ownedDir(join(this.dir, "user")), "config.yml");
    mkdirSync(join(this.dir, "bin"));
    loggingWrapper(join(this.dir, "bin", "beaker"), beakerBinary, this.beakerLog);
    const keygen = Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", join(this.dir, "host_key")]);
    if (keygen.exitCode !== 0) throw new Error(`ssh-keygen failed: ${keygen.stderr}`);
    this.setEnv = `BEAKER_EXECUTOR_SOCKET=${executorSocket} BEAKER_CONFIG=${this.userConfig} PATH=${join(this.dir, "bin")}:/usr/local/bin:/usr/bin:/bin`;
  }

  private readonly setEnv: string;

  get hostKey(): string {
    return readFileSync(join(this.dir, "host_key.pub"), "utf8").trim();
  }

  async start(authorizedKeys: string, port?: number): Promise<void> {
    this.port = port ?? (await freePort());
    writeFileSync(join(this.dir, "authorized_keys"), authorizedKeys);
    writeFileSync(
      join(this.dir, "sshd_config"),
      [
        `Port ${this.port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${join(this.dir, "host_key")}`,
        "PidFile none",
        `AuthorizedKeysFile ${join(this.dir, "authorized_keys")}`,
        // The key file lives under /tmp, which is world-writable.
        "StrictModes no",
        // PAM, so the test user's locked password does not lock out its keys.
        "UsePAM yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        `AllowUsers ${testUser}`,
        "PrintMotd no",
        "PrintLastLog no",
        `SetEnv ${this.setEnv}`,
        "",
      ].join("\n"),
    );
    // sshd's privilege separation directory; the package's service would create it.
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    this.proc = Bun.spawn(["/usr/sbin/sshd", "-f", join(this.dir, "sshd_config"), "-D", "-e"], {
      stdout: Bun.file(join(this.dir, "sshd.log")),
      stderr: Bun.file(join(this.dir, "sshd.log")),
    });
    const proc = this.proc;
    await eventually(
      async () => {
        if (proc.exitCode !== null) throw new Error(`sshd for ${this.name} exited: ${this.log()}`);
        return listening(this.port);
      },
      30_000,
      { what: `sshd for ${this.name} listening` },
    );
  }

  log(): string {
    return existsSync(join(this.dir, "sshd.log")) ? readFileSync(join(this.dir, "sshd.log"), "utf8") : "";
  }

  beakerCalls(): string {
    return readFileSync(this.beakerLog, "utf8");
  }

  async stop(): Promise<void> {
    if (this.proc) await stopProcess(this.proc, `sshd for ${this.name}`);
    this.proc = null;
  }

  async cleanup(): Promise<void> {
    await this.stop();
    removeDir(this.dir);
  }
}

/** The test user as a laptop: a key the nodes accept, ~/.ssh/config naming them, no executor. */
export class TestLaptop {
  readonly dir = tempDir("beaker-laptop-");
  readonly sshLog = join(this.dir, "ssh-calls.log");
  readonly config: string;
  private readonly sshConfig = join(home, ".ssh", "config");
  private readonly backup = join(home, ".ssh", "config.beaker-test-backup");
  private createdSshDir = false;

  constructor() {
    chmodSync(this.dir, 0o755);
    ownedDir(join(this.dir, "keys"));
    this.config = join(ownedDir(join(this.dir, "beaker")), "config.yml");
    mkdirSync(join(this.dir, "bin"));
    loggingWrapper(join(this.dir, "bin", "ssh"), "/usr/bin/ssh", this.sshLog);
    for (const key of ["id", "stranger"]) {
      Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", join(this.dir, "keys", key)]);
      chownSync(join(this.dir, "keys", key), uid, gid);
    }
  }

  get publicKey(): string {
    return readFileSync(join(this.dir, "keys", "id.pub"), "utf8");
  }

  /** Writes ~/.ssh/config (keeping the user's own aside) and known_hosts for these nodes. `stranger`: a host whose key is not accepted. */
  writeSshConfig(nodes: TestSshNode[], stranger: TestSshNode): void {
    const known = nodes.map((n) => `[127.0.0.1]:${n.port} ${n.hostKey}`).join("\n");
    writeFileSync(join(this.dir, "keys", "known_hosts"), `${known}\n`);
    const block = (name: string, port: number, key: string) =>
      [`Host ${name}`, "  HostName 127.0.0.1", `  Port ${port}`, `  User ${testUser}`, `  IdentityFile ${join(this.dir, "keys", key)}`, "  IdentitiesOnly yes"].join("\n");
    const config = [
      ...nodes.map((n) => block(n.name, n.port, "id")),
      block(`${stranger.name}-stranger`, stranger.port, "stranger"),
      "Host *",
      `  UserKnownHostsFile ${join(this.dir, "keys", "known_hosts")}`,
      "  StrictHostKeyChecking yes",
      "  BatchMode yes",
      "",
    ].join("\n");
    if (!existsSync(join(home, ".ssh"))) {
      ownedDir(join(home, ".ssh"));
      this.createdSshDir = true;
    } else if (existsSync(this.sshConfig) && !existsSync(this.backup)) renameSync(this.sshConfig, this.backup);
    writeFileSync(this.sshConfig, config, { mode: 0o600 });
    chownSync(this.sshConfig, uid, gid);
  }

  /** The environment the laptop's CLI runs with: its own config, an executor socket that does not exist. */
  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      HOME: home,
      USER: testUser,
      PATH: `${join(this.dir, "bin")}:/usr/local/bin:/usr/bin:/bin`,
      BEAKER_CONFIG: this.config,
      BEAKER_EXECUTOR_SOCKET: join(this.dir, "no-executor.sock"),
      BEAKER_NO_UPDATE_NOTIFIER: "1",
      ...extra,
    };
  }

  /** argv for running a command as the laptop user. */
  asUser(cmd: string[], extra: Record<string, string> = {}): string[] {
    const env = Object.entries(this.env(extra)).map(([k, v]) => `${k}=${v}`);
    return ["setpriv", `--reuid=${testUser}`, `--regid=${testUser}`, "--init-groups", "env", "-i", ...env, ...cmd];
  }

  /** The CLI as the laptop user; whatever is still running at cleanup is stopped, with the ssh it started. */
  spawn(args: string[], options: { env?: Record<string, string>; stdin?: string } = {}) {
    const proc = Bun.spawn(this.asUser([beakerBinary, ...args], options.env), {
      cwd: home,
      stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
      stdout: "pipe",
      stderr: "pipe",
    });
    this.spawned.push(proc);
    return proc;
  }

  private spawned: Array<ReturnType<typeof Bun.spawn>> = [];

  async run(args: string[], options: { env?: Record<string, string>; stdin?: string } = {}): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const proc = this.spawn(args, options);
    const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { exitCode, stdout, stderr };
  }

  sshCalls(): string {
    return readFileSync(this.sshLog, "utf8");
  }

  async cleanup(): Promise<void> {
    for (const proc of this.spawned.filter((p) => p.exitCode === null && p.signalCode === null)) await stopProcess(proc, "a laptop command");
    rmSync(this.sshConfig, { force: true });
    if (existsSync(this.backup)) renameSync(this.backup, this.sshConfig);
    if (this.createdSshDir) rmSync(join(home, ".ssh"), { recursive: true, force: true });
    removeDir(this.dir);
  }
}
