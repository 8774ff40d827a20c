import { spawn } from "node:child_process";
import { constants } from "node:os";
import type { ServerChannel, Session } from "ssh2";
import { buildChildEnv, acceptsEnv, planProcess, sessionEnvOf, type LoginUser } from "./login.ts";
import { serveSftp } from "./sftp.ts";

/** What a session channel needs from its connection. */
export interface SessionContext {
  user: LoginUser;
  /** The agent socket for this connection, made on the first `auth-agent-req`. */
  agentSocket(): Promise<string>;
  /** Registers a running program, stopped (SIGHUP, as sshd does) when the connection ends; returns the unregister. */
  track(hangUp: () => void): () => void;
}

interface Pty {
  cols: number;
  rows: number;
  term: string;
}

interface Running {
  resize(cols: number, rows: number): void;
  signal(name: NodeJS.Signals): void;
}

/** How long output may still arrive after a program on a terminal exits (a background job can hold the terminal). */
const ptyDrainMs = 250;

/** "INT" -> "SIGINT" when it is a signal this system knows; else null. */
function signalName(name: string): NodeJS.Signals | null {
  const full = `SIG${name.replace(/^SIG/, "")}`;
  return full in constants.signals ? (full as NodeJS.Signals) : null;
}

/** Reports the exit once (a program that cannot start reports both an error and a close). */
function finisher(channel: ServerChannel): (code: number | null, signal: string | null) => void {
  let done = false;
  return (code, signal) => {
    if (done) return;
    done = true;
    if (signal) channel.exit(signal.replace(/^SIG/, ""), false, "");
    else channel.exit(code ?? 255);
    channel.end();
  };
}

/**
 * One session channel, as sshd serves it: pty-req, env and auth-agent-req first, then a shell, an exec or the sftp
 * subsystem; window-change and signal while it runs; exit-status (or exit-signal) at the end.
 */
export function handleSession(session: Session, ctx: SessionContext): void {
  const sent: Record<string, string> = {};
  let pty: Pty | null = null;
  let agent: Promise<string> | null = null;
  let running: Running | null = null;

  session.on("pty", (accept, _reject, info) => {
    pty = { cols: info.cols || 80, rows: info.rows || 24, term: info.term || "xterm" };
    accept?.();
  });
  session.on("window-change", (accept, _reject, info) => {
    if (pty) Object.assign(pty, { cols: info.cols, rows: info.rows });
    running?.resize(info.cols, info.rows);
    accept?.();
  });
  session.on("env", (accept, reject, info) => {
    if (!acceptsEnv(info.key)) return reject?.();
    sent[info.key] = info.val;
    accept?.();
  });
  session.on("auth-agent", (accept, reject) => {
    agent = ctx.agentSocket();
    agent.then(() => accept?.(), () => reject?.());
  });
  session.on("signal", (accept, reject, info) => {
    const name = signalName(info.name);
    if (!name || !running) return reject?.();
    running.signal(name);
    accept?.();
  });
  session.on("sftp", (accept) => serveSftp(accept(), ctx.user.home));

  const start = async (channel: ServerChannel, command: string | null) => {
    const plan = planProcess(ctx.user, command);
    if ("error" in plan) {
      channel.stderr.write(`beaker: ${plan.error}\n`);
      return finisher(channel)(127, null);
    }
    const agentSocket = await (agent ?? Promise.resolve(null)).catch(() => null);
    const env = buildChildEnv(sessionEnvOf(process.env), { user: ctx.user, term: pty?.term ?? null, sent, agentSocket });
    running = pty ? runOnTerminal(channel, plan.argv, env, ctx, pty) : runWithPipes(channel, plan.argv, env, ctx);
  };
  session.on("shell", (accept) => void start(accept(), null));
  session.on("exec", (accept, _reject, info) => void start(accept(), info.command));
}

function runOnTerminal(channel: ServerChannel, argv: string[], env: Record<string, string>, ctx: SessionContext, pty: Pty): Running {
  let ptyClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => (ptyClosed = resolve));
  // Bun's own PTY: the program gets a new session with the terminal as its controlling terminal (job control, Ctrl-C).
  const proc = Bun.spawn(argv, {
    cwd: ctx.user.home,
    env,
    terminal: {
      cols: pty.cols,
      rows: pty.rows,
      name: pty.term,
      data: (_terminal, data) => void channel.write(Buffer.from(data)),
      exit: () => ptyClosed(),
    },
  });
  const terminal = proc.terminal!;
  channel.on("data", (data: Buffer) => terminal.write(data));
  const untrack = ctx.track(() => proc.kill("SIGHUP"));
  channel.on("close", () => proc.kill("SIGHUP"));
  void proc.exited.then(async () => {
    untrack();
    await Promise.race([closed, Bun.sleep(ptyDrainMs)]);
    terminal.close();
    finisher(channel)(proc.exitCode, typeof proc.signalCode === "string" ? proc.signalCode : null);
  });
  return {
    resize: (cols, rows) => terminal.resize(cols, rows),
    signal: (name) => proc.kill(name),
  };
}

function runWithPipes(channel: ServerChannel, argv: string[], env: Record<string, string>, ctx: SessionContext): Running {
  const child = spawn(argv[0]!, argv.slice(1), { cwd: ctx.user.home, env, stdio: "pipe" });
  const finish = finisher(channel);
  // The client's stdin goes in as it comes; the client stops sending when a slow program stops reading (SSH windows).
  channel.pipe(child.stdin);
  child.stdin.on("error", () => {});
  child.stdout.pipe(channel, { end: false });
  child.stderr.pipe(channel.stderr, { end: false });
  const untrack = ctx.track(() => child.kill("SIGHUP"));
  channel.on("close", () => child.exitCode === null && child.signalCode === null && child.kill("SIGHUP"));
  child.on("error", (err: NodeJS.ErrnoException) => {
    untrack();
    channel.stderr.write(`beaker: cannot run ${argv[0]}: ${err.code === "ENOENT" ? "no such file or directory" : err.message}\n`);
    finish(err.code === "ENOENT" ? 127 : 126, null);
  });
  child.on("close", (code, signal) => {
    untrack();
    finish(code, signal);
  });
  return {
    resize: () => {},
    signal: (name) => child.kill(name),
  };
}
