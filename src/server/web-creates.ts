/**
 * Sessions started from the web. The server makes the create request over the node link as the signed-in user and
 * holds it for as long as it waits in the node's queue, so the browser may leave; the session's page reads what the
 * server last heard (queue position, image pull, the error) from here. Like the CLI, a create that the executor's
 * restart (or the link's loss) cuts is sent again with its ticket, which keeps its place in the queue.
 *
 * Held in this server's memory: a server that stops drops its waiting creates (the executor then takes them out of
 * its queue, as when a CLI is interrupted). Bounded per user and in all; finished ones are forgotten after a while.
 */
import { BeakerError, ConflictError, errorCodeOf, errorFromCode, errorMessage, RestartingError } from "../errors.ts";
import type { CreateEvent, CreateSessionRequest, SessionInfo } from "../executor/api-types.ts";
import type { NodeLinks } from "../link/types.ts";

export interface WebCreate {
  user: string;
  node: string;
  sessionId: string | null;
  /** As asked for (null: the node's default). */
  image: string | null;
  requestedGpus: number | null;
  state: "requested" | "queued" | "slurm" | "pulling" | "created" | "failed";
  /** Place in the node's queue while queued. */
  position: number | null;
  /** What the node said last, for the page: the queue, Slurm's reason, the pull. */
  line: string | null;
  error: { code: string; message: string } | null;
  session: SessionInfo | null;
  finishedAt: number | null;
}

/** The node's first answer to a create: its session ID, or why it refused. */
export type FirstAnswer = { kind: "started"; sessionId: string } | { kind: "failed"; code: string; message: string };

export const webCreateLimits = {
  /** Creates one user may have waiting at once. */
  perUser: 8,
  total: 1000,
  /** How long a finished create is remembered for its page. */
  keepMs: 10 * 60_000,
  /** How long the form's POST waits for the node's first answer. */
  firstAnswerMs: 60_000,
  /** How long a cut create waits for its node to come back (the CLI's reconnect_timeout). */
  reconnectMs: 300_000,
  retryEveryMs: 1000,
};

export const notLinked = "this node's executor is not linked to the server";

/** The stream broke (link lost, executor gone) rather than the executor answering with an error. */
class LostError extends Error {}

/** NDJSON events from a response body; blank keepalive lines skipped; a line over 1 MiB ends it. */
async function* events(body: ReadableStream<Uint8Array> | null): AsyncGenerator<CreateEvent> {
  if (!body) return;
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    if (buffered.length > 1024 * 1024 && !buffered.includes("\n")) throw new LostError("the node sent a line over 1 MiB");
    let newline: number;
    while ((newline = buffered.indexOf("\n")) !== -1) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line) yield JSON.parse(line) as CreateEvent;
    }
  }
}

/** An executor's error answer (`{error: {code, message}}`) as a typed error. */
export async function answerError(res: Response): Promise<BeakerError> {
  const text = await res.text().catch(() => "");
  try {
    const { error } = JSON.parse(text) as { error: { code: string; message: string } };
    return errorFromCode(error.code, error.message);
  } catch {
    return new BeakerError(`the node answered ${res.status}: ${text.slice(0, 200)}`);
  }
}

export class WebCreates {
  private records = new Map<string, WebCreate>();
  private waiting = new Set<WebCreate>();

  constructor(
    private readonly links: NodeLinks,
    private readonly now: () => number = Date.now,
    private readonly log: (line: string) => void = () => {},
    private readonly limits = webCreateLimits,
  ) {}

  /** The create that made `sessionId`, when `user` made it from here. */
  get(sessionId: string, user: string): WebCreate | null {
    this.sweep();
    const record = this.records.get(sessionId);
    return record && record.user === user ? record : null;
  }

  /** Sends the request; resolves with the node's first answer while the server goes on holding the create. */
  async start(user: string, node: string, request: CreateSessionRequest): Promise<FirstAnswer> {
    this.sweep();
    const mine = [...this.waiting].filter((c) => c.user === user).length;
    if (mine >= this.limits.perUser) throw new ConflictError(`you have ${mine} sessions waiting to start from the web; wait for one, or stop one`);
    if (this.waiting.size >= this.limits.total) throw new ConflictError("too many sessions are waiting to start from the web; try again later");
    const record: WebCreate = { user, node, sessionId: null, image: request.image, requestedGpus: request.gpus, state: "requested", position: null, line: null, error: null, session: null, finishedAt: null };
    const abort = new AbortController();
    let answer!: (a: FirstAnswer) => void;
    const first = new Promise<FirstAnswer>((resolve) => (answer = resolve));
    this.waiting.add(record);
    void this.follow(record, request, abort.signal, answer).finally(() => this.waiting.delete(record));
    const timer = setTimeout(() => {
      abort.abort();
      answer({ kind: "failed", code: "unavailable", message: `node ${node} did not answer within ${this.limits.firstAnswerMs / 1000} s` });
    }, this.limits.firstAnswerMs);
    try {
      return await first;
    } finally {
      clearTimeout(timer);
    }
  }

  private sweep(): void {
    for (const [id, record] of this.records) if (record.finishedAt !== null && this.now() - record.finishedAt > this.limits.keepMs) this.records.delete(id);
  }

  private async follow(record: WebCreate, request: CreateSessionRequest, signal: AbortSignal, answer: (a: FirstAnswer) => void): Promise<void> {
    let ticket: string | undefined;
    /** Since when the create has been cut off from its node (null while the node answers). */
    let cutSince: number | null = null;
    const finish = (err: unknown) => {
      record.finishedAt = this.now();
      if (err === null) return;
      record.state = "failed";
      record.error = { code: errorCodeOf(err), message: errorMessage(err) };
      answer({ kind: "failed", ...record.error });
    };
    for (;;) {
      try {
        const link = this.links.get(record.node);
        if (!link) throw new LostError(notLinked);
        const res = await link.request(record.user, { method: "POST", path: "/v1/sessions", body: ticket ? { ...request, ticket } : request }, signal);
        if (!res.ok) throw await answerError(res);
        for await (const event of events(res.body)) {
          cutSince = null;
          if (event.type === "ticket") {
            ticket = event.ticket;
            if (record.sessionId === null) {
              record.sessionId = event.sessionId;
              this.records.set(event.sessionId, record);
              answer({ kind: "started", sessionId: event.sessionId });
            }
          } else if (event.type === "returned") {
            if (!event.kept) record.line = "the node restarted and did not keep this request's place in the queue; waiting again";
          } else if (event.type === "queued") {
            Object.assign(record, { state: "queued", position: event.position, line: `waiting for ${event.gpus} GPU${event.gpus === 1 ? "" : "s"}: position ${event.position} in the queue (${event.free} free now)` });
          } else if (event.type === "slurm") {
            Object.assign(record, { state: "slurm", position: null, line: `Slurm job ${event.job} is pending${event.reason ? ` (${event.reason})` : ""}` });
          } else if (event.type === "pulling") {
            Object.assign(record, { state: "pulling", position: null, line: `pulling ${event.image}: ${event.status}` });
          } else if (event.type === "error") {
            throw errorFromCode(event.code, event.message);
          } else if (event.type === "created") {
            Object.assign(record, { state: "created", position: null, line: null, session: event.session });
            answer({ kind: "started", sessionId: event.session.id });
            return finish(null);
          }
        }
        throw new LostError("the node closed the connection before the session was created");
      } catch (err) {
        // A restarting executor is asked again; a broken stream only once the node took the request (as the CLI does).
        const lost = err instanceof LostError || !(err instanceof BeakerError);
        const again = err instanceof RestartingError || (lost && ticket !== undefined);
        if (signal.aborted || !again) return finish(lost ? new BeakerError(errorMessage(err)) : err);
        cutSince ??= this.now();
        if (ticket) this.log(`web create ${record.sessionId} on ${record.node} for ${record.user} was cut (${errorMessage(err)}); sending it again with its ticket`);
        if (!(await this.waitForLink(record.node, cutSince, signal))) return finish(new BeakerError(`node ${record.node} did not come back within ${this.limits.reconnectMs / 1000} s`));
      }
    }
  }

  /** Waits (bounded) for the node's link to be there again; false when it is not, or the create was given up. */
  private async waitForLink(node: string, cutSince: number, signal: AbortSignal): Promise<boolean> {
    const until = cutSince + this.limits.reconnectMs;
    for (;;) {
      await Bun.sleep(this.limits.retryEveryMs);
      if (signal.aborted) return false;
      if (this.links.get(node)) return true;
      if (this.now() >= until) return false;
    }
  }
}
