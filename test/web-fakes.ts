/**
 * A fake node link (src/link/types.ts) for the web's tests: an executor that knows whose sessions are whose, answers
 * creates with a ticket and a queue place (then waits until told), and records every request and socket, with the
 * user each was made as. Plus a signed-in browser against the handler in process.
 */
import type { LinkRequest, LinkSocket, NodeLink, NodeLinks } from "../src/link/types.ts";

export class FakeSocket implements LinkSocket {
  sent: Array<string | Uint8Array> = [];
  closed: { code?: number; reason?: string } | null = null;
  queued = 0;
  onmessage: ((message: string | Uint8Array) => void) | null = null;
  onclose: ((code: number, reason: string) => void) | null = null;
  ondrain: (() => void) | null = null;
  constructor(
    readonly user: string,
    readonly path: string,
  ) {}
  send(message: string | Uint8Array): boolean {
    if (this.closed) return false;
    this.sent.push(message);
    return true;
  }
  buffered(): number {
    return this.queued;
  }
  close(code?: number, reason?: string): void {
    this.closed ??= { code, reason };
  }
}

export interface FakeSession {
  id: string;
  owner: string;
  name: string;
  status: string;
  tty: boolean;
}

export class FakeLink implements NodeLink {
  requests: Array<{ user: string; req: LinkRequest }> = [];
  sockets: FakeSocket[] = [];
  sessions = new Map<string, FakeSession>();
  /** What the next create answers: its events, then (unless `end`) the stream stays open. */
  createEvents: unknown[] = [];
  endCreate = false;
  /** False: the create is refused before it gets a ticket (the events alone). */
  createTicket = true;
  private nextId = 0xabc000000000;

  async request(user: string, req: LinkRequest): Promise<Response> {
    this.requests.push({ user, req });
    if (req.method === "POST" && req.path === "/v1/sessions") {
      const id = (this.nextId++).toString(16);
      this.sessions.set(id, { id, owner: user, name: `s-${id.slice(-4)}`, status: "queued", tty: true });
      const lines = [...(this.createTicket ? [{ type: "ticket", sessionId: id, ticket: "t.t" }] : []), ...this.createEvents].map((e) => `${JSON.stringify(e).replaceAll("$ID", id)}\n`);
      const end = this.endCreate;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          for (const line of lines) controller.enqueue(new TextEncoder().encode(line));
          if (end) controller.close();
        },
      });
      return new Response(body, { headers: { "content-type": "application/x-ndjson" } });
    }
    const one = /^\/v1\/sessions\/([^/?]+)(\/stop)?$/.exec(req.path);
    const s = one ? this.sessions.get(one[1]!) : undefined;
    if (!one || !s || s.owner !== user) return Response.json({ error: { code: "not_found", message: `no session ${one?.[1]} of yours on this node` } }, { status: 404 });
    if (one[2]) s.status = "exited";
    return Response.json({ id: s.id, name: s.name, node: "n1", user: s.owner, account: s.owner, gpus: s.status === "running" ? ["GPU-1"] : [], image: "debian", status: s.status, tty: s.tty, requestedGpus: 1, queuePosition: s.status === "queued" ? 2 : null });
  }

  socket(user: string, path: string): LinkSocket {
    const socket = new FakeSocket(user, path);
    this.sockets.push(socket);
    return socket;
  }
}

export class FakeLinks implements NodeLinks {
  links = new Map<string, FakeLink>();
  get(node: string): NodeLink | null {
    return this.links.get(node) ?? null;
  }
}

type Handle = (req: Request) => Promise<Response>;

/** A browser signed in with `token`: its cookie, and the CSRF token its pages carry. */
export async function signIn(handle: Handle, token: string, base = "http://server"): Promise<{ cookie: string; csrf: string }> {
  const res = await handle(new Request(`${base}/login`, { method: "POST", body: new URLSearchParams({ token }), headers: { "content-type": "application/x-www-form-urlencoded" } }));
  if (res.status !== 303) throw new Error(`sign-in answered ${res.status}`);
  const cookie = /beaker_session=[^;]+/.exec(res.headers.get("set-cookie") ?? "")![0];
  const page = await (await handle(new Request(`${base}/`, { headers: { cookie } }))).text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(page)![1]!;
  return { cookie, csrf };
}

/** A form POST as a browser on `origin` sends it. */
export function post(base: string, path: string, cookie: string | null, fields: Record<string, string>, origin: string | null = base): Request {
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
  if (cookie) headers.cookie = cookie;
  if (origin) headers.origin = origin;
  return new Request(`${base}${path}`, { method: "POST", body: new URLSearchParams(fields), headers });
}
