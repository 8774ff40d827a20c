/**
 * The binary starts with JavaScriptCore's JIT held back (scripts/build.ts: code compiles only after 1,000 times its
 * usual number of runs), which suits commands that run briefly and the executor, whose JavaScript only orchestrates
 * Docker. A long-running process whose JavaScript does the work (the server, the SSH server in a session, the byte
 * pipes of proxy and port-forward) lets it compile as usual.
 */
export function allowJit(): void {
  Bun.unsafe.setJITPolicy(1);
}
