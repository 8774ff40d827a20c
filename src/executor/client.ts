import { existsSync } from "node:fs";
import { BeakerError, errorFromCode, UnavailableError } from "../errors.ts";
import { connectionFailure } from "../util/net.ts";
import { traceHeader, type Timeline } from "../util/trace.ts";
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
  /** It is stopping to restart: clients wait for the next one (absent from executors before restarts were graceful). */
  restarting?: boolean;
}

/** No executor took the request: nothing listens on the socket (not started, or between two runs). */
export class ExecutorUnreachableError extends UnavailableError {
  override name = "ExecutorUnreachableError";
}

/** The connection broke after the executor had answered: it stopped or restarted in the middle of a request. */
export class ConnectionLostError extends UnavailableError {
  override name = "ConnectionLostError";
}

/** The CLI's side of the executor's unix socket: HTTP for requests, NDJSON streams for progress, WebSocket for terminals. */
export class ExecutorClient {
  readonly proofDir: string;

  constructor(
    readonly socketPath: string,
    /** Sent with every request when set; the login flow sets it after asking. */
    public token: string | null = null,
    /** When set, requests ask the executor for its trace points and the client marks its own. */
    readonly trace: Timeline | null = null,
  ) {
    this.proofDir = proofDirFor(socketPath);
  }

  private authHeaders(proof: string): Record<string, string> {
    return { [proofHeader]: proof, ...(this.token ? { [tokenHeader]: this.token } : {}), ...(this.trace ? { [traceHeader]: "1" } : {}) };
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

  private unreachable(err: unknown): ExecutorUnreachableError {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" || !existsSync(this.socketPath) ? "no executor socket at" : "the executor does not answer on";
    const error = new ExecutorUnreachableError(`${reason} ${this.socketPath}: start it with 'systemctl start beaker-executor' (or set BEAKER_EXECUTOR_SOCKET)`);
    error.cause = err;
    return error;
  }

  /** The connection broke mid-answer: said plainly, the library's error kept for --debug. */
  lost(err: unknown): ConnectionLostError {
    const error = new ConnectionLostError(
      `lost the connection to the executor (${connectionFailure(err)}); it may be restarting: try again in a moment ('beaker executor status' says whether it runs)`,
    );
    error.cause = err;
    return error;
  }

  /** Sends one authenticated request; its response body is returned whole. */
  async fetch(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    let proof: { header: string; path: string };
    try {
      proof = createProof(this.proofDir);
    } catch (err) {
      throw this.unreachable(err);
    }
    this.trace?.mark("proof written");
    try {
      const res = await fetch(`http://beaker${path}`, {
        method,
        unix: this.socketPath,
        headers: { ...this.authHeaders(proof.header), "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
      this.trace?.mark("response headers");
      if (!res.ok) throw await errorFromResponse(res);
      return res;
    } catch (err) {
      if ((err as Error).name === "AbortError" || (err as Error).name === "TimeoutError") throw err;
      if (err instanceof BeakerError) throw err;
      throw this.unreachable(err);
    } finally {
      removeProof(proof.path);
    }
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.fetch(method, path, body);
    try {
      return (await res.json()) as T;
    } catch (err) {
      throw this.lost(err);
    }
  }

  /** Reads a streamed response of newline-delimited JSON events. */
  async *events<T>(method: string, path: string, body: unknown, signal?: AbortSignal): AsyncGenerator<T> {
    const res = await this.fetch(method, path, body, signal);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (signal?.aborted) throw err;
        throw this.lost(err);
      }
      const { done, value } = chunk;
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.indexOf("\n")) !== -1) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) yield parseEvent<T>(line, this);
      }
    }
    // A last line without its newline was cut off: the executor went away in the middle of it.
    if (buffer.trim()) throw this.lost(new Error("the answer ended in the middle of a line"));
  }

  /** Opens a WebSocket on the socket (terminal streams). The proof travels in the first message's place: a header. */
  openSocket(path: string): { socket: WebSocket; proofPath: string } {
    let proof: { header: string; path: string };
    try {
      proof = createProof(this.proofDir);
    } catch (err) {
      throw this.unreachable(err);
    }
    this.trace?.mark("terminal requested");
    const socket = new WebSocket(`ws+unix://${this.socketPath}:${path}`, {
      headers: this.authHeaders(proof.header),
    } as unknown as string[]);
    socket.binaryType = "arraybuffer";
    return { socket, proofPath: proof.path };
  }
}

function parseEvent<T>(line: string, client: ExecutorClient): T {
  try {
    return JSON.parse(line) as T;
  } catch (err) {
    throw client.lost(err);
  }
}

async function errorFromResponse(res: Response): Promise<Error> {
  try {
    const body = (await res.json()) as { error?: { code: string; message: string } };
    if (body.error) return errorFromCode(body.error.code, body.error.message);
  } catch {}
  return new UnavailableError(`the executor answered ${res.status} ${res.statusText}`);
}
