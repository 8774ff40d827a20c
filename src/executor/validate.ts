/**
 * The executor's socket is open to every local user and the executor is root: every request is checked against its
 * shape here, before anything runs. Pure; each refusal is a UsageError (HTTP 400) that says what was wrong.
 */
import { UsageError } from "../errors.ts";
import { slurmNamePattern } from "../config/executor.ts";
import type { ClientControl, CreateSessionRequest, SlurmRequest } from "./api-types.ts";

export const requestLimits = {
  bodyBytes: 256 * 1024,
  ports: 32,
  envEntries: 256,
  envBytes: 64 * 1024,
  mounts: 32,
  pathBytes: 4096,
  commandArgs: 4096,
  commandBytes: 128 * 1024,
  terminalSize: 10_000,
  gpus: 1024,
  cpus: 4096,
  /** `--time` and `keep --for`: a year at most. */
  timeLimitSeconds: 366 * 86400,
} as const;

/** C0 and C1 control characters (and DEL): never in a name, path or image that may be printed on a terminal. */
const controlChars = /[\u0000-\u001f\u007f-\u009f]/;

export function hasControlChars(text: string): boolean {
  return controlChars.test(text);
}

// Docker's reference grammar (distribution/reference): [domain[:port]/]path[:tag][@digest].
const domainComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const domain = `(?:${domainComponent}(?:\\.${domainComponent})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?`;
const pathComponent = "[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";
const reference = new RegExp(`^(?:${domain}/)?${pathComponent}(?:/${pathComponent})*(?::[\\w][\\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$`);

/**
 * Whether `ref` is an image reference Docker accepts. Pure. A first component with no "." or ":" that is not
 * `localhost` is not a registry to Docker but part of the repository's path, which must be lowercase (`UPPER/case`
 * went through to Docker 20.10, whose refusal came back as an untyped error: the fuzzer found it).
 */
export function isImageReference(ref: string): boolean {
  if (ref.length > 512 || !reference.test(ref)) return false;
  const first = ref.includes("/") ? ref.slice(0, ref.indexOf("/")) : "";
  return /[.:]/.test(first) || first === "localhost" || first === first.toLowerCase();
}

type Field = (value: unknown, name: string) => unknown;

const fail = (name: string, what: string): never => {
  throw new UsageError(`${name} ${what}`);
};
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const nullable =
  (field: Field): Field =>
  (v, name) =>
    v === null ? null : field(v, name);
const boolean: Field = (v, name) => (typeof v === "boolean" ? v : fail(name, "must be true or false"));
const integer =
  (min: number, max: number): Field =>
  (v, name) =>
    typeof v === "number" && Number.isInteger(v) && v >= min && v <= max ? v : fail(name, `must be a whole number from ${min} to ${max}`);
const text =
  (max: number, pattern?: RegExp, shape?: string): Field =>
  (v, name) => {
    if (typeof v !== "string") return fail(name, "must be a string");
    if (v.length > max) return fail(name, `is longer than ${max} characters`);
    if (hasControlChars(v)) return fail(name, "may not contain control characters");
    if (pattern && !pattern.test(v)) return fail(name, `must be ${shape}`);
    return v;
  };
const absolutePath: Field = (v, name) => {
  const path = text(requestLimits.pathBytes)(v, name) as string;
  return path.startsWith("/") ? path : fail(name, "must be an absolute path");
};
const list =
  (max: number, item: Field): Field =>
  (v, name) => {
    if (!Array.isArray(v)) return fail(name, "must be a list");
    if (v.length > max) return fail(name, `may have at most ${max} entries`);
    return v.map((x, i) => item(x, `${name}[${i}]`));
  };
/** Free text passed to the program (arguments, env values): any bytes but NUL, bounded in total. */
const strings =
  (maxEntries: number, maxBytes: number, each?: Field): Field =>
  (v, name) => {
    const items = list(maxEntries, (x, n) => (typeof x === "string" && !x.includes("\u0000") ? (each ? each(x, n) : x) : fail(n, "must be a string without NUL")))(v, name) as string[];
    if (items.reduce((sum, s) => sum + s.length, 0) > maxBytes) fail(name, `is larger than ${maxBytes} bytes in all`);
    return items;
  };

const slurmFields: Record<keyof SlurmRequest, Field> = {
  job: nullable(text(32, /^\d+$/, "a Slurm job ID (a number)")),
  partition: nullable(text(256, slurmNamePattern, "a Slurm partition name")),
  account: nullable(text(256, slurmNamePattern, "a Slurm account name")),
  qos: nullable(text(256, slurmNamePattern, "a Slurm QOS name")),
};

/** A mapping whose every key is known and present, each checked by its field. */
const record =
  <T>(fields: Record<keyof T & string, Field>): Field =>
  (v, name) => {
    if (!isObject(v)) return fail(name, "must be an object");
    for (const key of Object.keys(v)) if (!Object.hasOwn(fields, key)) fail(name, `has an unknown field "${key}"`);
    const out: Record<string, unknown> = {};
    for (const [key, field] of Object.entries<Field>(fields)) {
      if (!(key in v)) fail(name, `has no "${key}"`);
      out[key] = field(v[key], `${name}.${key}`);
    }
    return out;
  };

const sizeText = text(32, /^\d+(\.\d+)?\s*[kmgtpKMGTP]?[iI]?[bB]?$/, "a size like 64g");
const createFields: Record<keyof CreateSessionRequest, Field> = {
  gpus: nullable(integer(0, requestLimits.gpus)),
  image: nullable((v, name) => {
    const ref = text(512)(v, name) as string;
    return isImageReference(ref) ? ref : fail(name, `"${ref}" is not an image reference (like ubuntu:22.04 or registry.example.com/team/image:tag)`);
  }),
  name: nullable(text(63, /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'letters, digits, "_", "." and "-"')),
  cpus: nullable((v, name) => (typeof v === "number" && v > 0 && v <= requestLimits.cpus ? v : fail(name, `must be a number above 0 and at most ${requestLimits.cpus}`))),
  memory: nullable(sizeText),
  sharedMemory: nullable(sizeText),
  ports: (v, name) => {
    const ports = list(requestLimits.ports, integer(1, 65535))(v, name) as number[];
    return new Set(ports).size === ports.length ? ports : fail(name, "lists a port twice");
  },
  env: strings(requestLimits.envEntries, requestLimits.envBytes, (v, name) =>
    /^[A-Za-z_][A-Za-z0-9_]*=/.test(v as string) ? v : fail(name, "must be KEY=VALUE"),
  ),
  mounts: list(requestLimits.mounts, text(2 * requestLimits.pathBytes + 8)),
  workdir: nullable(absolutePath),
  command: strings(requestLimits.commandArgs, requestLimits.commandBytes),
  cwd: absolutePath,
  tty: boolean,
  term: nullable(text(64, /^[A-Za-z0-9._+-]+$/, "a terminal name like xterm-256color")),
  noWait: boolean,
  detach: boolean,
  ticket: text(1024, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, "a queue ticket"),
  slurm: nullable(record<SlurmRequest>(slurmFields)),
  timeLimit: nullable(integer(1, requestLimits.timeLimitSeconds)),
};

/** Fields a request may leave out (added after the first CLIs shipped). */
const optionalCreateFields = new Set(["ticket", "slurm", "timeLimit"]);

/** A create request as sent over the socket -> a request every later step can trust. Throws UsageError. */
export function parseCreateRequest(body: unknown): CreateSessionRequest {
  if (!isObject(body)) throw new UsageError("the request must be a JSON object");
  // Own fields only: `in` would let "constructor" or "toString" (Object.prototype's) through as known.
  for (const key of Object.keys(body)) if (!Object.hasOwn(createFields, key)) throw new UsageError(`unknown field "${key}" in the request`);
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(createFields)) {
    if (!(key in body) && optionalCreateFields.has(key)) continue;
    if (!(key in body)) throw new UsageError(`the request has no "${key}"`);
    out[key] = field(body[key], key);
  }
  return out as unknown as CreateSessionRequest;
}

/** A stop request's body: `{timeout?: seconds}`. */
export function parseStopRequest(body: unknown): { timeout: number } {
  if (!isObject(body)) throw new UsageError("the request must be a JSON object");
  for (const key of Object.keys(body)) if (key !== "timeout") throw new UsageError(`unknown field "${key}" in the request`);
  return { timeout: body.timeout === undefined ? 10 : (integer(0, 3600)(body.timeout, "timeout") as number) };
}

/** A keep request's body: `{for: seconds}`. */
export function parseKeepRequest(body: unknown): { seconds: number } {
  if (!isObject(body)) throw new UsageError("the request must be a JSON object");
  for (const key of Object.keys(body)) if (key !== "for") throw new UsageError(`unknown field "${key}" in the request`);
  return { seconds: integer(1, requestLimits.timeLimitSeconds)(body.for, "for") as number };
}

/** A terminal's query: size, TERM and (exec) the command, from the WebSocket URL. */
export function parseTerminalQuery(q: URLSearchParams): { cols: number; rows: number; term: string | null; command: string[]; tty: boolean; start: boolean } {
  const size = (name: string) => {
    const raw = q.get(name) ?? "0";
    return /^\d{1,5}$/.test(raw) ? (integer(0, requestLimits.terminalSize)(Number(raw), name) as number) : fail(name, "must be a whole number");
  };
  let command: unknown = [];
  const cmd = q.get("cmd");
  if (cmd) {
    try {
      command = JSON.parse(cmd);
    } catch {
      fail("cmd", "must be a JSON list of strings");
    }
  }
  return {
    cols: size("cols"),
    rows: size("rows"),
    term: q.get("term") === null ? null : (text(64, /^[A-Za-z0-9._+-]+$/, "a terminal name")(q.get("term"), "term") as string),
    command: strings(requestLimits.commandArgs, requestLimits.commandBytes)(command, "cmd") as string[],
    tty: q.get("tty") === "1",
    start: q.get("start") === "1",
  };
}

/** A text frame on a terminal socket: a control message, or null for anything else (ignored, never fatal). */
export function parseControl(message: string): ClientControl | null {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return null;
  }
  if (!isObject(value)) return null;
  const dim = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v > 0 && v <= requestLimits.terminalSize;
  if (value.type === "resize" && dim(value.cols) && dim(value.rows)) return { type: "resize", cols: value.cols as number, rows: value.rows as number };
  if (value.type === "signal" && typeof value.name === "string" && /^SIG[A-Z0-9]{1,10}$/.test(value.name)) return { type: "signal", name: value.name };
  if (value.type === "stdin-eof") return { type: "stdin-eof" };
  return null;
}
