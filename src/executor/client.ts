import { existsSync } from "node:fs";
import { errorFromCode, UnavailableError } from "../errors.ts";
import { createProof, proofDirFor, proofHeader, removeProof, tokenHeader } from "./proof.ts";

export interface ExecutorHealth {
  version: string;
  commit: string;
  node: string;
  pid: number;
  /** The Beaker server this node reports to, or null. */
  server: string | null;
  /** The file the daemon was started from (null when run from source). */
  binary: string | null;
}

/** The CLI's side of the executor's unix socket: HTTP for requests, NDJSON streams for progress, WebSocket for terminals. */
export class ExecutorClient {
  readonly proofDir: string;

  constructor(
    readonly socketPath: string,
    /** Sent with every request when set; the login flow sets it after asking. */
    public token: string | null = null,
  ) {
    this.proofDir = proofDirFor(socketPath);
  }

  private authHeaders(proof: string): Record<string, string> {
    return { [proofHeader]: proof, ...(this.token ? { [tokenHeader]: this.token } : {}) };
  }

  /** The executor's health answer, or null when none answers on the socket. */
  async health(): Promise<ExecutorHealth | null> {
    if (!existsSync(this.socketPath)) return null;
    try {
      const res = await fetch("http://beaker/v1/health", { unix: this.socketPath, signal: AbortSignal.timeout(3000) });
      return res.ok ? ((await res.json()) as ExecutorHealth) : null;
    } catch {
      return null;
    }
  }

  async isRunning(): Promise<boolean> {
    return (await this.health()) !== null;
  }

  private unreachable(err: unknown): UnavailableError {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" || !existsSync(this.socketPath) ? "no executor socket at" : "the executor does not answer on";
    return new UnavailableError(
      `${reason} ${this.socketPath}: start it with 'systemctl start beaker-executor' (or set BEAKER_EXECUTOR_SOCKET)`,
    );
  }

  /** Sends one authenticated request; its response body is returned whole. */
  async fetch(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    let proof: { header: string; path: string };
    try {
      proof = createProof(this.proofDir);
    } catch (err) {
      throw this.unreachable(err);
    }
    try {
      const res = await fetch(`http://beaker${path}`, {
        method,
        unix: this.socketPath,
        headers: { ...this.authHeaders(proof.header), "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
      if (!res.ok) throw await errorFromResponse(res);
      return res;
    } catch (err) {
      if ((err as Error).name === "AbortError" || (err as Error).name === "TimeoutError") throw err;
      if (err instanceof Error && "exitCode" in err) throw err;
      throw this.unreachable(err);
    } finally {
      removeProof(proof.path);
    }
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.fetch(method, path, body);
    return (await res.json()) as T;
  }

  /** Reads a streamed response of newline-delimited JSON events. */
  async *events<T>(method: string, path: string, body: unknown, signal?: AbortSignal): AsyncGenerator<T> {
    const res = await this.fetch(method, path, body, signal);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.indexOf("\n")) !== -1) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) yield JSON.parse(line) as T;
      }
    }
    if (buffer.trim()) yield JSON.parse(buffer) as T;
  }

  /** Opens a WebSocket on the socket (terminal streams). The proof travels in the first message's place: a header. */
  openSocket(path: string): { socket: WebSocket; proofPath: string } {
    let proof: { header: string; path: string };
    try {
      proof = createProof(this.proofDir);
    } catch (err) {
      throw this.unreachable(err);
    }
    const socket = new WebSocket(`ws+unix://${this.socketPath}:${path}`, {
      headers: this.authHeaders(proof.header),
    } as unknown as string[]);
    socket.binaryType = "arraybuffer";
    return { socket, proofPath: proof.path };
  }
}

async function errorFromResponse(res: Response): Promise<Error> {
  try {
    const body = (await res.json()) as { error?: { code: string; message: string } };
    if (body.error) return errorFromCode(body.error.code, body.error.message);
  } catch {}
  return new UnavailableError(`the executor answered ${res.status} ${res.statusText}`);
}
