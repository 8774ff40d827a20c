import { AuthError, errorFromCode, UnavailableError } from "../errors.ts";
import { connectionFailure } from "../util/net.ts";
import type { ClusterInfo, Heartbeat, HeartbeatAnswer, NodeInfo, NodeSession, PlacementNodeInfo, UserInfo } from "./types.ts";

/** The server's HTTP API, for the CLI (user token) and the executor (node token, or a user's token to check it). */
export class ServerClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string | null,
    private readonly timeoutMs = 10_000,
  ) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}/api/v1${path}`, {
        method,
        headers: { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const reason = (err as Error).name === "TimeoutError" ? `no answer in ${this.timeoutMs / 1000} s` : connectionFailure(err);
      throw Object.assign(new UnavailableError(`cannot reach the Beaker server at ${this.baseUrl}: ${reason}`), { cause: err });
    }
    if (res.ok) {
      try {
        return (await res.json()) as T;
      } catch (err) {
        throw Object.assign(new UnavailableError(`the Beaker server at ${this.baseUrl} broke off its answer: ${connectionFailure(err)}; try again`), { cause: err });
      }
    }
    let error: { code?: string; message?: string } = {};
    try {
      error = ((await res.json()) as { error?: typeof error }).error ?? {};
    } catch {}
    if (res.status === 401) throw new AuthError(error.message ?? "the server did not accept the token");
    if (res.status >= 500 || !error.code) throw new UnavailableError(`the Beaker server at ${this.baseUrl} answered ${res.status}${error.message ? `: ${error.message}` : ""}`);
    throw errorFromCode(error.code, error.message ?? `HTTP ${res.status}`);
  }

  whoami = () => this.request<UserInfo>("GET", "/whoami");
  rotateToken = () => this.request<{ token: string }>("POST", "/account/token/rotate");
  clusters = () => this.request<ClusterInfo[]>("GET", "/clusters");
  clusterNodes = (name: string) => this.request<NodeInfo[]>("GET", `/clusters/${encodeURIComponent(name)}/nodes`);
  placement = (cluster: string) => this.request<PlacementNodeInfo[]>("GET", `/clusters/${encodeURIComponent(cluster)}/nodes?placement=1`);
  nodes = () => this.request<NodeInfo[]>("GET", "/nodes");
  sessions = (cluster?: string) => this.request<Array<NodeSession & { node: string }>>("GET", `/sessions${cluster ? `?cluster=${encodeURIComponent(cluster)}` : ""}`);
  heartbeat = (hostname: string, beat: Heartbeat) => this.request<HeartbeatAnswer>("PUT", `/nodes/${encodeURIComponent(hostname)}/heartbeat`, beat);
}
