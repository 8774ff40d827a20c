/**
 * The fuzzer's generator (test/security/fuzz.test.ts): from a seed and what each user's sessions are, the next step
 * one of two ordinary users takes against the executor. Pure: the same seed over the same sessions gives the same
 * steps. Every action is one entry of `actions`; to fuzz a new route, add an entry whose `make` returns a Step (an
 * HTTP request, a create, or a terminal with frames). A step that names the other user's session carries a `probe`:
 * the runner sends it again with a `twin` reference that matches nothing of the caller's, and the answers must agree.
 */
import { rng } from "../sim/world.ts";
import { hostileCreate, invalidBody, plainCreate, sessionNames } from "./fuzz-values.ts";

export type Who = "a" | "b";
export const otherOf = (who: Who): Who => (who === "a" ? "b" : "a");

/** One session as its owner's own list shows it. */
export interface Known {
  id: string;
  name: string;
  status: string;
}

export interface World {
  /** Each user's sessions (running and finished), from their own `GET /v1/sessions?all=1`. */
  sessions: Record<Who, Known[]>;
  homes: Record<Who, string>;
}

/** `ref` names the other user's session (by `how`); `twin` has its shape and matches nothing of the caller's. */
export interface Probe {
  ref: string;
  twin: string;
  how: "id" | "prefix" | "name";
}

/** `tame`: no byte that a TTY turns into a signal (Ctrl-C, Ctrl-Z, Ctrl-\), for the caller's own sessions. */
export type Frame = { text: string } | { binary: number[] } | { flood: number; size: number; asBinary: boolean; tame: boolean };

/** The bytes a TTY's line discipline turns into SIGINT, SIGTSTP and SIGQUIT: typed into one's own session, they end it. */
export const signalBytes = new Set([3, 26, 28]);
export const tameBytes = (bytes: number[]) => bytes.map((b) => (signalBytes.has(b) ? 32 : b));

/** `{ref}` in a path is the probe's reference (or its twin). `hangUpMs`: the caller goes away this soon. */
export type Step =
  | { kind: "http"; method: string; path: string; body?: string; proof?: "own" | "none" | "forged"; hangUpMs?: number; probe?: Probe }
  | { kind: "create"; body: Record<string, unknown> | string; mustStart: boolean; hangUpMs?: number }
  | { kind: "terminal"; path: string; frames: Frame[]; waitForEnd: boolean; probe?: Probe };

export interface Planned {
  n: number;
  who: Who;
  action: string;
  step: Step;
}

/** The seeded randomness, with the helpers every action uses. */
export class Gen {
  readonly random: () => number;
  constructor(seed: number) {
    this.random = rng(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.random() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.random() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }
  hex(n: number): string {
    return Array.from({ length: n }, () => "0123456789abcdef"[this.int(0, 15)]).join("");
  }
  bytes(n: number): number[] {
    return Array.from({ length: n }, () => this.int(0, 255));
  }
  text(n: number): string {
    return String.fromCharCode(...Array.from({ length: n }, () => this.int(0, 0x2ff)));
  }
}

/** What an action sees: whose turn it is, both users' sessions, and both homes. */
export interface Ctx {
  who: Who;
  own: Known[];
  theirs: Known[];
  ownHome: string;
  otherHome: string;
}

type Budget = "create" | "hostile" | "terminal";

export interface Action {
  name: string;
  weight: number;
  /** Steps that start containers or processes are counted: a run makes a bounded number of them. */
  budget?: Budget;
  make(g: Gen, ctx: Ctx): Step | null;
}

const live = (sessions: Known[]) => sessions.filter((s) => s.status !== "exited");
const matchesAny = (ref: string, sessions: Known[]) => sessions.some((s) => s.id === ref || s.name === ref || s.id.startsWith(ref));
/** At most this many of a user's sessions run at once. */
export const maxLivePerUser = 3;

/** A reference to one of the other user's sessions that cannot mean one of the caller's, and its twin; or null. */
function probeOf(g: Gen, ctx: Ctx): Probe | null {
  if (ctx.theirs.length === 0) return null;
  const target = g.pick(ctx.theirs);
  const how = g.pick(["id", "prefix", "name"] as const);
  const ref = how === "id" ? target.id : how === "prefix" ? target.id.slice(0, g.int(4, 11)) : target.name;
  if (matchesAny(ref, ctx.own)) return null;
  for (let i = 0; i < 10; i++) {
    const twin = how === "name" ? `${g.pick(["n", "q", "z"])}${g.hex(ref.length - 1)}` : g.hex(ref.length);
    if (twin !== ref && !matchesAny(twin, ctx.own)) return { ref, twin, how };
  }
  return null;
}

/** One of the caller's own sessions by ID, prefix or name (a name or prefix may mean several: that answer is fine too). */
function ownRef(g: Gen, ctx: Ctx, onlyLive: boolean): string | null {
  const pool = onlyLive ? live(ctx.own) : ctx.own;
  if (pool.length === 0) return null;
  const s = g.pick(pool);
  return g.pick([s.id, s.id.slice(0, g.int(3, 11)), s.name]);
}

const harmlessSignals = ["SIGWINCH", "SIGCONT", "SIGURG", "SIGCHLD", "SIGFOO", "SIGX", "KILL", "SIGKILLKILLKILL", "sigterm"];
const anySignals = [...harmlessSignals, "SIGKILL", "SIGTERM", "SIGINT", "SIGHUP", "SIGSTOP", "SIGUSR1"];
const goodSizes = [0, 1, 2, 24, 80, 4096, 10_000];
const absurdSizes = [10_001, 65_535, 2 ** 31, -1, 1.5, 1e300, "80", null];
/** A terminal size: mostly one the executor takes, so the terminal opens and its frames reach it. */
const size = (g: Gen) => (g.chance(0.75) ? g.pick(goodSizes) : g.pick(absurdSizes));

/**
 * Terminal frames: control messages of every shape, garbage text, binary, and floods. On one's own sessions (`own`)
 * only harmless signals and no signal bytes: a session its owner ends is the owner's doing, and would read as the
 * other user's once it shows.
 */
function frames(g: Gen, own: boolean): Frame[] {
  const signals = own ? harmlessSignals : anySignals;
  return Array.from({ length: g.int(0, 8) }, (): Frame => {
    const r = g.int(0, 9);
    if (r === 0) return { text: JSON.stringify({ type: "resize", cols: size(g), rows: size(g) }) };
    if (r === 1) return { text: JSON.stringify({ type: "signal", name: g.pick(signals) }) };
    if (r === 2) return { text: JSON.stringify(g.pick([null, 1, [], {}, { type: "stdin-eof" }, { type: "resize" }, { type: { toString: 1 } }, { type: "signal", name: 9 }])) };
    if (r === 3) return { text: g.text(g.int(0, 64)) };
    if (r === 4) return { flood: g.int(50, 400), size: g.int(1, 2048), asBinary: g.chance(0.5), tame: own };
    if (r === 5) return { text: "x".repeat(g.int(1, 1024 * 1024 - 1)) };
    const bytes = g.bytes(g.int(0, 128));
    return { binary: own ? tameBytes(bytes) : bytes };
  });
}

/** Exec commands: ones that end by themselves, `cat` (which ends at stdin-eof), a login shell, and malformed ones. */
const execCommands = ['["true"]', '["id"]', '["sh","-c","for d in /fz*; do echo pwn > $d/pwn; done; true"]', '["cat"]', "[]", "not json", "[1,2]", '["\\u0000"]'];

/** A terminal query (sizes, absurd ones included; TERM; for exec a command and a TTY), and whether its process ends. */
function terminalQuery(g: Gen, exec: boolean): { query: string; ends: boolean } {
  const q = new URLSearchParams();
  if (g.chance(0.8)) q.set("cols", String(size(g)));
  if (g.chance(0.8)) q.set("rows", String(size(g)));
  if (g.chance(0.3)) q.set("term", g.pick(["xterm", "xterm-256color", "bad term", "\u001b[2J", "x".repeat(100)]));
  const cmd = exec ? g.pick(execCommands) : null;
  if (exec) q.set("tty", g.pick(["0", "1"]));
  if (cmd) q.set("cmd", cmd);
  const text = q.toString();
  return { query: text ? `?${text}` : "", ends: cmd !== null && cmd !== "[]" };
}

const randomPaths = ["/v1/sessions/{ref}/../../restart", "/v1/sessions/%2e%2e", "/v1//sessions", "/v1/sessions/a/b/c", "/v1/restart", "/v1/gpus", "/v1/sessions/%00", "/v1/sessions/..%2f..%2fetc", "/", "/v1/health/../sessions"];

export const actions: Action[] = [
  { name: "list", weight: 6, make: (g) => ({ kind: "http", method: "GET", path: g.pick(["/v1/sessions", "/v1/sessions?all=1", "/v1/gpus"]) }) },
  {
    name: "describe own",
    weight: 4,
    make: (g, ctx) => {
      const ref = ownRef(g, ctx, false);
      return ref ? { kind: "http", method: "GET", path: `/v1/sessions/${ref}` } : null;
    },
  },
  {
    name: "theirs: describe, stop, keep",
    weight: 12,
    make: (g, ctx) => {
      const probe = probeOf(g, ctx);
      if (!probe) return null;
      const [method, suffix, body] = g.pick([["GET", "", undefined], ["POST", "/stop", '{"timeout":0}'], ["POST", "/stop", "{}"], ["POST", "/keep", '{"for":3600}'], ["POST", "/stop", g.pick(invalidBody(g))]] as const);
      return { kind: "http", method, path: `/v1/sessions/{ref}${suffix}`, ...(body === undefined ? {} : { body }), probe };
    },
  },
  {
    name: "theirs: attach or exec",
    weight: 6,
    make: (g, ctx) => {
      const probe = probeOf(g, ctx);
      if (!probe) return null;
      const exec = g.chance(0.5);
      return { kind: "terminal", path: `/v1/sessions/{ref}/${exec ? "exec" : "attach"}${terminalQuery(g, exec).query}`, frames: frames(g, false), waitForEnd: true, probe };
    },
  },
  {
    name: "create",
    weight: 3,
    budget: "create",
    make: (g, ctx) => (live(ctx.own).length >= maxLivePerUser ? null : plainCreate(g, ctx, sessionNames(ctx.theirs))),
  },
  {
    name: "create, hostile",
    weight: 6,
    budget: "hostile",
    make: (g, ctx) => (live(ctx.own).length >= maxLivePerUser ? null : hostileCreate(g, ctx)),
  },
  { name: "create, malformed", weight: 8, make: (g) => ({ kind: "create", body: g.pick(invalidBody(g)), mustStart: false }) },
  {
    name: "stop own",
    weight: 3,
    make: (g, ctx) => {
      const ref = ownRef(g, ctx, true);
      return ref && live(ctx.own).length > 1 ? { kind: "http", method: "POST", path: `/v1/sessions/${ref}/stop`, body: '{"timeout":0}' } : null;
    },
  },
  {
    name: "keep own",
    weight: 2,
    make: (g, ctx) => {
      const ref = ownRef(g, ctx, false);
      return ref ? { kind: "http", method: "POST", path: `/v1/sessions/${ref}/keep`, body: g.pick(['{"for":60}', '{"for":0}', '{"for":-1}', "[]", '{"for":1e99}']) } : null;
    },
  },
  {
    name: "attach or exec own",
    weight: 4,
    budget: "terminal",
    make: (g, ctx) => {
      const ref = ownRef(g, ctx, true);
      if (!ref) return null;
      const exec = g.chance(0.6);
      const { query, ends } = terminalQuery(g, exec);
      // Read to its end only a process that ends: `cat` once its stdin does (Ctrl-D on a TTY).
      const waitForEnd = ends && g.chance(0.7);
      const sent = [...frames(g, true), ...(waitForEnd ? [{ binary: [10, 4] }, { text: '{"type":"stdin-eof"}' }] : [])];
      return { kind: "terminal", path: `/v1/sessions/${ref}/${exec ? "exec" : "attach"}${query}`, frames: sent, waitForEnd };
    },
  },
  {
    name: "random path",
    weight: 5,
    make: (g) => ({ kind: "http", method: g.pick(["GET", "POST", "PUT", "DELETE", "PATCH"]), path: g.pick(randomPaths).replace("{ref}", g.hex(6)), body: g.chance(0.5) ? g.pick(invalidBody(g)) : undefined }),
  },
  {
    name: "forged or missing proof",
    weight: 2,
    make: (g) => ({ kind: "http", method: g.pick(["GET", "POST"]), path: g.pick(["/v1/sessions?all=1", "/v1/restart", "/v1/gpus"]), proof: g.pick(["none", "forged"] as const) }),
  },
  {
    name: "hang up mid-request",
    weight: 3,
    make: (g, ctx) => {
      const ref = ownRef(g, ctx, false) ?? g.hex(12);
      return { kind: "http", method: "GET", path: g.pick([`/v1/sessions/${ref}`, "/v1/sessions?all=1", "/v1/gpus"]), hangUpMs: g.int(0, 5) };
    },
  },
  {
    name: "create, hung up",
    weight: 1,
    budget: "create",
    make: (g, ctx) => {
      if (live(ctx.own).length >= maxLivePerUser) return null;
      const step = plainCreate(g, ctx, []);
      return { ...step, mustStart: false, hangUpMs: g.int(0, 400) };
    },
  },
];

/** How many steps of each budget a run of `steps` steps may take. */
export function budgetsFor(steps: number): Record<Budget, number> {
  // Most hostile creates are refused at once; the few that start cost what a plain create does.
  return { create: 4 + Math.ceil(steps / 100), hostile: 10 + Math.ceil(steps / 40), terminal: 4 + Math.ceil(steps / 25) };
}

/** The steps of one seeded run, one at a time: `next` reads the world as the runner last saw it. */
export class Planner {
  private readonly g: Gen;
  private readonly left: Record<Budget, number>;
  private n = 0;
  constructor(seed: number, steps: number) {
    this.g = new Gen(seed);
    this.left = budgetsFor(steps);
  }

  next(world: World): Planned {
    const g = this.g;
    const who: Who = g.chance(0.5) ? "a" : "b";
    const other = otherOf(who);
    const ctx: Ctx = { who, own: world.sessions[who], theirs: world.sessions[other], ownHome: world.homes[who], otherHome: world.homes[other] };
    this.n++;
    for (let tries = 0; tries < 20; tries++) {
      const usable = actions.filter((a) => !a.budget || this.left[a.budget] > 0);
      const total = usable.reduce((sum, a) => sum + a.weight, 0);
      let roll = g.random() * total;
      const action = usable.find((a) => (roll -= a.weight) < 0) ?? usable[0]!;
      const step = action.make(g, ctx);
      if (!step) continue;
      if (action.budget) this.left[action.budget]--;
      return { n: this.n, who, action: action.name, step };
    }
    return { n: this.n, who, action: "list", step: { kind: "http", method: "GET", path: "/v1/sessions" } };
  }
}
