import { BodyTooLargeError, UsageError } from "../errors.ts";

const optionalMark = Symbol("optional");

/**
 * A JSON shape: a type name (`"?"` suffix: may be null or missing), an array of one shape, an object of shapes, or
 * `optional(shape)` for a list or object that may be null or missing.
 */
export type Shape =
  | "string"
  | "number"
  | "boolean"
  | "string?"
  | "number?"
  | { readonly [key: string]: Shape }
  | readonly [Shape]
  | { readonly [optionalMark]: Shape };

export const optional = (shape: Shape): Shape => ({ [optionalMark]: shape });

/**
 * Checks a parsed body against a shape: wrong types and unknown fields are refused with the path that is wrong
 * (`gpus[2].uuid must be a string`), so a client bug is a 400 with a reason, never a half-stored record.
 */
export function validate<T>(value: unknown, shape: Shape, path = "body"): T {
  if (typeof shape === "string") {
    const optional = shape.endsWith("?");
    const type = shape.replace("?", "");
    if (optional && (value === null || value === undefined)) return value as T;
    const ok = type === "number" ? typeof value === "number" && Number.isFinite(value) : typeof value === type;
    if (!ok) throw new UsageError(`${path} must be a ${type}`);
    if (type === "string" && (value as string).length > 4096) throw new UsageError(`${path} is too long`);
    return value as T;
  }
  if (typeof shape === "object" && optionalMark in shape) {
    return value === null || value === undefined ? (value as T) : validate<T>(value, shape[optionalMark], path);
  }
  if (Array.isArray(shape)) {
    if (!Array.isArray(value)) throw new UsageError(`${path} must be a list`);
    if (value.length > 10_000) throw new UsageError(`${path} has too many entries`);
    value.forEach((item, i) => validate(item, shape[0] as Shape, `${path}[${i}]`));
    return value as T;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new UsageError(`${path} must be an object`);
  const fields = shape as { readonly [key: string]: Shape };
  for (const key of Object.keys(value)) if (!(key in fields)) throw new UsageError(`unknown field ${path}.${key}`);
  for (const [key, field] of Object.entries(fields)) validate((value as Record<string, unknown>)[key], field, `${path}.${key}`);
  return value as T;
}

/** Reads a body of at most `limit` bytes. */
export async function readText(req: Request, limit: number): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? 0);
  if (declared > limit) throw new BodyTooLargeError(limit);
  // Read as it comes and stop past the limit: a chunked body has no length to refuse up front, and the server takes
  // large bodies (for sessions' ports), so Bun's own limit no longer bounds this.
  // No body at all (a form POST with no fields): nothing to read. An empty ReadableStream would never end.
  if (!req.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > limit) throw new BodyTooLargeError(limit);
    chunks.push(chunk);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`body is not valid JSON: ${(err as Error).message}`);
  }
}

export const heartbeatShape: Shape = {
  cpus: "number",
  memoryBytes: "number",
  version: "string",
  gpus: [
    {
      index: "number?",
      uuid: "string",
      name: "string?",
      memoryMiB: "number?",
      claimedBy: "string?",
      healthy: "boolean",
      error: "string?",
      foreignProcesses: optional([{ pid: "number", name: "string" }]),
      utilization: "number?",
      memoryUsedMiB: "number?",
    },
  ],
  sessions: [
    {
      id: "string",
      name: "string",
      user: "string",
      gpus: ["string"],
      image: "string",
      status: "string",
      createdAt: "string",
      startedAt: "string?",
      utilization: optional(["number?"]),
      idleSince: "string?",
      deadline: "string?",
      ports: optional(["number"]),
    },
  ],
};
