/** A real Beaker server (dist/beaker server run) on SQLite or on a private PostgreSQL, for e2e tests. */
import { chownSync, existsSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { beakerBinary, eventually, removeDir, stopProcess, tempDir, type RunResult } from "./harness.ts";
import type { LinkHub } from "../src/server/links.ts";
import { openStore, serveBeaker, type ServedBeaker } from "../src/server/run.ts";
import type { Store } from "../src/server/store.ts";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function pgBin(name: string): string {
  const versions = existsSync("/usr/lib/postgresql") ? readdirSync("/usr/lib/postgresql").sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const path = `/usr/lib/postgresql/${v}/bin/${name}`;
    if (existsSync(path)) return path;
  }
  throw new Error(`PostgreSQL's ${name} is not installed (Debian package postgresql; scripts/test installs it)`);
}

/** A throwaway PostgreSQL cluster owned by the postgres user, trust auth on loopback; no fsync unless `durable`. */
export class TestPostgres {
  readonly dir = tempDir("beaker-pg-");
  port = 0;
  private proc: ReturnType<typeof Bun.spawn> | null = null;

  constructor(private readonly options: { durable?: boolean } = {}) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** The postmaster's pid (setpriv execs it), for benchmarks that read its CPU time. */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  async start(): Promise<void> {
    const data = join(this.dir, "data");
    const uid = Number(Bun.spawnSync(["id", "-u", "postgres"]).stdout.toString());
    const gid = Number(Bun.spawnSync(["id", "-g", "postgres"]).stdout.toString());
    chownSync(this.dir, uid, gid);
    const asPostgres = ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups"];
    const init = Bun.spawnSync([...asPostgres, pgBin("initdb"), "-D", data, "--auth=trust", "-U", "postgres", "--no-sync"], { stdout: "pipe", stderr: "pipe" });
    if (init.exitCode !== 0) throw new Error(`initdb failed: ${init.stderr}`);
    this.port = await freePort();
    this.proc = Bun.spawn(
      [...asPostgres, pgBin("postgres"), "-D", data, "-p", String(this.port), "-k", this.dir, "-c", "listen_addresses=127.0.0.1", "-c", `fsync=${this.options.durable ? "on" : "off"}`, "-c", "max_connections=200"],
      { stdout: Bun.file(join(this.dir, "log")), stderr: Bun.file(join(this.dir, "log")) },
    );
    const proc = this.proc;
    await eventually(
      () => {
        if (proc.exitCode !== null) throw new Error(`postgres exited ${proc.exitCode}`);
        return Bun.spawnSync([pgBin("pg_isready"), "-h", "127.0.0.1", "-p", String(this.port)]).exitCode === 0;
      },
      30_000,
      { what: "PostgreSQL accepting connections" },
    );
  }

  async stop(): Promise<void> {
    if (this.proc) await stopProcess(this.proc, "PostgreSQL", "SIGINT");
    removeDir(this.dir);
  }
}

/** `beaker server run` on a free port with the given store. */
export class TestServer {
  readonly dir = tempDir("beaker-server-");
  port = 0;
  private proc: ReturnType<typeof Bun.spawn> | null = null;
  readonly db: string;

  /** `args`: more `server run` flags (`--ports-domain localhost`). */
  constructor(db?: string, private readonly releases?: string, private readonly args: string[] = []) {
    this.db = db ?? `sqlite://${join(this.dir, "server.db")}`;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  async start(port?: number): Promise<void> {
    this.port = port ?? (await freePort());
    const args = [beakerBinary, "server", "run", "--listen", `127.0.0.1:${this.port}`, "--db", this.db, ...(this.releases ? ["--releases", this.releases] : []), ...this.args];
    const proc = Bun.spawn(args, { stdout: Bun.file(join(this.dir, "log")), stderr: Bun.file(join(this.dir, "log")) });
    this.proc = proc;
    await eventually(
      async () => {
        if (proc.exitCode !== null) throw new Error(`server exited ${proc.exitCode}: ${await Bun.file(join(this.dir, "log")).text()}`);
        return (await fetch(`${this.url}/api/v1/health`)).ok;
      },
      30_000,
      { what: "server health" },
    );
  }

  async stop(): Promise<void> {
    if (this.proc) await stopProcess(this.proc, "the Beaker server");
    this.proc = null;
  }

  async cleanup(): Promise<void> {
    await this.stop();
    removeDir(this.dir);
  }

  /** An admin command (`server user create ...`) against this server's store. */
  async admin(args: string[]): Promise<RunResult> {
    const proc = Bun.spawn([beakerBinary, "server", ...args, "--db", this.db], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH } });
    const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { exitCode, stdout, stderr };
  }

  async createUser(name: string, admin = false): Promise<string> {
    const r = await this.admin(["user", "create", name, ...(admin ? ["--admin"] : [])]);
    if (r.exitCode !== 0) throw new Error(r.stderr);
    return r.stdout.trim();
  }

  /** Adds a node and writes its token to a 0600 file; returns the file. */
  async addNode(hostname: string, cluster: string, dir: string): Promise<string> {
    const r = await this.admin(["node", "add", hostname, "--cluster", cluster]);
    if (r.exitCode !== 0) throw new Error(r.stderr);
    const file = join(dir, "executor-token");
    writeFileSync(file, r.stdout, { mode: 0o600 });
    return file;
  }

  api(path: string, token: string | null, init: RequestInit = {}): Promise<Response> {
    return fetch(`${this.url}/api/v1${path}`, { ...init, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers ?? {}) } });
  }
}

/**
 * The server's code (serveBeaker: API, pages, node links) in the test's own process, on SQLite, so a test can reach
 * `links` (NodeLinks) directly: what the web pages will do, with no test-only route in the binary. `kill()` cuts
 * every connection at once, as a crash would for the nodes; `start(port)` again brings it back on the same store.
 */
export class InProcessServer {
  readonly dir = tempDir("beaker-server-");
  readonly db = `sqlite://${join(this.dir, "server.db")}`;
  port = 0;
  store: Store | null = null;
  private served: ServedBeaker | null = null;
  readonly lines: string[] = [];

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get links(): LinkHub {
    if (!this.served) throw new Error("the server is not running");
    return this.served.links;
  }

  async start(port = 0): Promise<void> {
    this.store = await openStore(this.db);
    this.served = serveBeaker({ hostname: "127.0.0.1", port, store: this.store, db: this.store.db, releasesDir: null, log: (line) => this.lines.push(line) });
    this.port = this.served.port;
  }

  async kill(): Promise<void> {
    await this.served?.stop(true);
    await this.store?.db.close();
    this.served = null;
    this.store = null;
  }

  async cleanup(): Promise<void> {
    await this.kill();
    removeDir(this.dir);
  }

  /** A node of `cluster` (made if need be), its token in a 0600 file in `dir`; returns the token and the file. */
  async addNode(hostname: string, cluster: string, dir: string): Promise<{ token: string; file: string }> {
    await this.store!.createCluster(cluster).catch(() => {});
    const { token } = await this.store!.addNode(hostname, cluster);
    const file = join(dir, `${hostname}.token`);
    writeFileSync(file, token, { mode: 0o600 });
    return { token, file };
  }
}
