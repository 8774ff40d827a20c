/**
 * A git server over HTTPS for tests: git's own `git http-backend` (CGI) behind a TLS server with a self-signed
 * certificate and HTTP basic auth, like a Git host that takes personal access tokens as passwords.
 */
import { join } from "node:path";
import { removeDir, tempDir } from "./harness.ts";

export class TestGitServer {
  readonly dir = tempDir("beaker-git-server-");
  readonly repos = join(this.dir, "repos");
  readonly caFile = join(this.dir, "cert.pem");
  /** Authorization headers seen, to prove what git sent. */
  readonly seenUsers: string[] = [];
  private server: ReturnType<typeof Bun.serve> | null = null;

  constructor(readonly token: string) {}

  get host(): string {
    return `127.0.0.1:${this.server!.port}`;
  }

  url(repo: string): string {
    return `https://${this.host}/${repo}`;
  }

  async start(): Promise<void> {
    const cert = Bun.spawnSync(
      ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(this.dir, "key.pem"), "-out", this.caFile, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
      { stderr: "pipe" },
    );
    if (cert.exitCode !== 0) throw new Error(`openssl: ${cert.stderr}`);
    Bun.spawnSync(["mkdir", "-p", this.repos]);
    this.server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: Bun.file(this.caFile), key: Bun.file(join(this.dir, "key.pem")) },
      fetch: (req) => this.handle(req),
    });
  }

  /** A bare repository anyone with the token may push to; owned by `owner` so its tests can read it. */
  createRepo(name: string): void {
    const path = join(this.repos, name);
    Bun.spawnSync(["git", "init", "-q", "--bare", "-b", "main", path]);
    Bun.spawnSync(["git", "-C", path, "config", "http.receivepack", "true"]);
  }

  /** The commit subjects on a branch of a repository, newest first. */
  log(name: string, branch = "main"): string[] {
    const r = Bun.spawnSync(["git", "-C", join(this.repos, name), "log", "--format=%s", branch], { stdout: "pipe", stderr: "pipe" });
    return r.exitCode === 0 ? r.stdout.toString().split("\n").filter(Boolean) : [];
  }

  private async handle(req: Request): Promise<Response> {
    const auth = req.headers.get("authorization");
    const decoded = auth?.startsWith("Basic ") ? Buffer.from(auth.slice(6), "base64").toString() : "";
    const [user, ...rest] = decoded.split(":");
    if (rest.join(":") !== this.token) {
      return new Response("authentication required\n", { status: 401, headers: { "www-authenticate": 'Basic realm="test git"' } });
    }
    this.seenUsers.push(user!);
    const url = new URL(req.url);
    const body = new Uint8Array(await req.arrayBuffer());
    const proc = Bun.spawn(["git", "http-backend"], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: this.repos,
        GIT_HTTP_EXPORT_ALL: "1",
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method,
        CONTENT_TYPE: req.headers.get("content-type") ?? "",
        CONTENT_LENGTH: String(body.length),
        HTTP_CONTENT_ENCODING: req.headers.get("content-encoding") ?? "",
        GIT_PROTOCOL: req.headers.get("git-protocol") ?? "",
        REMOTE_USER: user!,
        REMOTE_ADDR: "127.0.0.1",
      },
      stdin: body,
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = new Uint8Array(await new Response(proc.stdout).arrayBuffer());
    await proc.exited;
    const text = Buffer.from(out);
    const split = text.indexOf("\r\n\r\n");
    const head = text.subarray(0, split).toString();
    const headers = new Headers();
    let status = 200;
    for (const line of head.split("\r\n")) {
      const [k, ...v] = line.split(":");
      if (k!.toLowerCase() === "status") status = Number(v.join(":").trim().split(" ")[0]);
      else if (k) headers.set(k, v.join(":").trim());
    }
    return new Response(text.subarray(split + 4), { status, headers });
  }

  stop(): void {
    this.server?.stop(true);
    removeDir(this.dir);
  }
}
