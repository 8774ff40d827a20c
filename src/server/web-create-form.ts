/**
 * The node page's "Start a session" form -> the create request the CLI sends for `beaker session create --detach
 * [--gpus N] [--image I] [--time D] [--name N]` with no command: the image's shell on a TTY, started at once. Built by
 * the CLI's own builder (same request, same words for a bad value), then checked as the executor will check it, so a
 * mistake is shown on the form before anything reaches the node. Pure.
 */
import { UsageError } from "../errors.ts";
import type { CreateSessionRequest } from "../executor/api-types.ts";
import { parseCreateRequest } from "../executor/validate.ts";
import { buildCreateRequest } from "../executor/create-request.ts";

export interface CreateFormValues {
  image: string;
  gpus: string;
  time: string;
  name: string;
}

/** What the server knows of the node: the form's bound on GPUs. */
export interface FormNode {
  hostname: string;
  gpusTotal: number;
}

/** The fields as posted (absent: empty), trimmed. */
export function createFormValues(form: URLSearchParams): CreateFormValues {
  const field = (name: string) => (form.get(name) ?? "").trim();
  return { image: field("image"), gpus: field("gpus"), time: field("time"), name: field("name") };
}

/** The request for these values; a UsageError with the CLI's (or the executor's) words for a bad one. */
export function createRequestFrom(values: CreateFormValues, node: FormNode): CreateSessionRequest {
  const given = (v: string) => (v === "" ? undefined : v);
  // Only the flags the form has; the rest as the CLI leaves them when not given.
  const flags = { gpus: given(values.gpus), image: given(values.image), name: given(values.name), time: given(values.time), detach: true, wait: true, port: [], env: [], mount: [] };
  const request = buildCreateRequest(flags, [], { cwd: "/", tty: true, term: "xterm-256color", defaultImage: null });
  if (request.gpus !== null && request.gpus > node.gpusTotal) throw new UsageError(`asked for ${request.gpus} GPUs, but node ${node.hostname} has ${node.gpusTotal}`, null);
  return parseCreateRequest(request);
}
