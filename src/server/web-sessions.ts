/**
 * The web's session routes: start one from a node's page, a session's page and its status, stop, and where its
 * terminal goes. A session is reached only by its owner: the server finds it among the sessions its nodes reported for
 * the signed-in account (or the creates it holds for it), and anyone else gets the same 404 as for no session at all;
 * the node then checks again, since every request goes over the link as that account.
 */
import { ConflictError, errorFromCode, httpStatusOf, NotFoundError, UsageError } from "../errors.ts";
import type { SessionDetails } from "../executor/api-types.ts";
import type { NodeLink, NodeLinks } from "../link/types.ts";
import type { Store } from "./store.ts";
import type { NodeSession } from "./types.ts";
import { nodePage, type SignedIn } from "./web.ts";
import { createFormValues, createRequestFrom } from "./web-create-form.ts";
import { answerError, notLinked, type WebCreate, type WebCreates } from "./web-creates.ts";
import { sessionPage, stopConfirmPage, type SessionPageView } from "./web-session-page.ts";

export interface WebSessionDeps {
  store: Store;
  links: NodeLinks | null;
  creates: WebCreates;
  log: (line: string) => void;
  now: () => number;
}

/** Session IDs as executors make them (hex); anything else is no session, and never a name or a prefix. */
const idPattern = /^[0-9a-f]{8,64}$/;

/** The seconds a stop from the page gives the session's processes (the CLI's default). */
const stopTimeout = 10;

function withStatus(res: Response, status: number): Response {
  return new Response(res.body, { status, headers: res.headers });
}

/** Where the viewer's own session is: a create held here, or the nodes' reports. Anyone else's: 404, as for none. */
async function locate(deps: WebSessionDeps, viewer: SignedIn, id: string): Promise<{ node: string; reported: NodeSession | null; pending: WebCreate | null }> {
  const missing = new NotFoundError(`no session ${id}`);
  if (!idPattern.test(id)) throw missing;
  const name = viewer.user.name;
  const pending = deps.creates.get(id, name);
  // An admin's list holds everyone's sessions: the page is still the owner's only.
  const reported = (await deps.store.listSessions(viewer.user)).find((s) => s.id === id && s.user === name) ?? null;
  const node = pending?.node ?? reported?.node;
  if (!node) throw missing;
  return { node, reported, pending };
}

/**
 * What the node says of the session as the viewer: its details, "gone" when it knows none (a 404 unless the server
 * holds the create), or null when it cannot be asked now.
 */
async function describe(link: NodeLink | null, viewer: SignedIn, id: string, pending: WebCreate | null): Promise<SessionDetails | "gone" | null> {
  if (!link) return null;
  let res: Response;
  try {
    res = await link.request(viewer.user.name, { method: "GET", path: `/v1/sessions/${id}` });
  } catch {
    return null;
  }
  if (res.ok) return (await res.json()) as SessionDetails;
  await res.body?.cancel();
  if (res.status !== 404) return null;
  if (!pending) throw new NotFoundError(`no session ${id}`);
  return "gone";
}

/** The session as its page shows it; throws NotFoundError for one that is not the viewer's. */
export async function sessionView(deps: WebSessionDeps, viewer: SignedIn, id: string): Promise<SessionPageView> {
  const { node, reported, pending } = await locate(deps, viewer, id);
  const link = deps.links?.get(node) ?? null;
  const answer = await describe(link, viewer, id, pending);
  const details = answer === "gone" ? null : answer;
  const waiting = pending && pending.state !== "created" && pending.state !== "failed" ? pending : null;
  const failed = pending?.state === "failed" ? (pending.error?.message ?? "the create failed") : null;
  // A session the node no longer knows has ended (or never started); what the reports or the create said is history.
  const gone = answer === "gone" ? (failed ? "failed" : "ended") : null;
  const view: SessionPageView = {
    id,
    node,
    name: details?.name ?? reported?.name ?? pending?.session?.name ?? id,
    status: gone ?? (failed && !details ? "failed" : (details?.status ?? reported?.status ?? pending?.session?.status ?? waiting?.state ?? "unknown")),
    gpus: details?.gpus ?? reported?.gpus ?? pending?.session?.gpus ?? [],
    requestedGpus: details?.requestedGpus ?? pending?.requestedGpus ?? null,
    image: details?.image ?? reported?.image ?? pending?.session?.image ?? pending?.image ?? "the node's default",
    queuePosition: details?.queuePosition ?? (waiting?.state === "queued" ? waiting.position : null),
    line: waiting?.line ?? null,
    error: failed,
    tty: details?.tty ?? pending?.session?.tty ?? true,
    linked: link !== null,
  };
  return view;
}

export async function sessionPageRoute(deps: WebSessionDeps, viewer: SignedIn, id: string): Promise<Response> {
  return sessionPage(viewer, await sessionView(deps, viewer, id));
}

/** The page's status poll: the same view as JSON (read by the page's script, same origin only). */
export async function sessionStatusRoute(deps: WebSessionDeps, viewer: SignedIn, id: string): Promise<Response> {
  return Response.json(await sessionView(deps, viewer, id), { headers: { "cache-control": "no-store" } });
}

/** The node page's form: a detached session as the viewer, held here while it waits; on to its page once it has an ID. */
export async function createRoute(deps: WebSessionDeps, viewer: SignedIn, hostname: string, form: URLSearchParams): Promise<Response> {
  const node = await deps.store.getNode(hostname, viewer.user);
  const link = deps.links?.get(node.hostname) ?? null;
  const values = createFormValues(form);
  const refuse = async (status: number, error: string) => withStatus(await nodePage(deps.store, viewer, node.hostname, deps.now(), { linked: link !== null, values, error }), status);
  if (!link) return refuse(409, notLinked);
  let answer;
  try {
    answer = await deps.creates.start(viewer.user.name, node.hostname, createRequestFrom(values, node));
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConflictError) return refuse(httpStatusOf(err), err.message);
    throw err;
  }
  if (answer.kind === "failed") return refuse(httpStatusOf(errorFromCode(answer.code, answer.message)), answer.message);
  deps.log(`web create: session ${answer.sessionId} on ${node.hostname} for ${viewer.user.name}`);
  return new Response(null, { status: 303, headers: { location: `/sessions/${answer.sessionId}` } });
}

/** Stop: a confirmation page first, then (with `confirm=yes`) the node's stop as the viewer. */
export async function stopRoute(deps: WebSessionDeps, viewer: SignedIn, id: string, form: URLSearchParams): Promise<Response> {
  const view = await sessionView(deps, viewer, id);
  if (form.get("confirm") !== "yes") return stopConfirmPage(viewer, view);
  const link = deps.links?.get(view.node);
  if (!link) throw new ConflictError(notLinked);
  const res = await link.request(viewer.user.name, { method: "POST", path: `/v1/sessions/${id}/stop`, body: { timeout: stopTimeout } });
  if (!res.ok) throw await answerError(res);
  await res.body?.cancel();
  deps.log(`web stop: session ${id} on ${view.node} by ${viewer.user.name}`);
  return new Response(null, { status: 303, headers: { location: `/sessions/${id}` } });
}

/** A terminal's target on the node: the viewer's session, attached (a TTY session's shell) or a login shell exec'd. */
export async function terminalTarget(deps: WebSessionDeps, viewer: SignedIn, id: string, query: URLSearchParams): Promise<{ link: NodeLink; path: string }> {
  const view = await sessionView(deps, viewer, id);
  const link = deps.links?.get(view.node);
  if (!link) throw new ConflictError(notLinked);
  const mode = query.get("mode") ?? (view.tty ? "attach" : "exec");
  if (mode !== "attach" && mode !== "exec") throw new UsageError(`mode must be attach or exec, not "${mode}"`);
  const size = (name: string) => {
    const raw = query.get(name) ?? "0";
    const n = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
    if (!(n >= 0 && n <= 10_000)) throw new UsageError(`${name} must be a whole number from 0 to 10000`);
    return String(n);
  };
  const params = new URLSearchParams({ cols: size("cols"), rows: size("rows"), ...(mode === "exec" ? { tty: "1", term: "xterm-256color" } : {}) });
  return { link, path: `/v1/sessions/${id}/${mode}?${params}` };
}
