/**
 * Typed errors, one per exit code of the architecture page. Every layer throws these; only src/main.ts turns them
 * into an exit status. `code` is the stable name used on the executor's wire so a client can rebuild the same type.
 */
export class BeakerError extends Error {
  readonly exitCode: number = 1;
  readonly code: string = "error";
  override name = "BeakerError";
}

/**
 * A bad flag or argument, exit 2: printed with the command's usage (`usageFor`, filled in by the CLI frame), or alone
 * when `usageFor` is null (a value the executor refused: the command line itself was well-formed).
 */
export class UsageError extends BeakerError {
  override readonly exitCode = 2;
  override readonly code = "usage";
  override name = "UsageError";
  constructor(
    message: string,
    readonly usageFor?: string | null,
  ) {
    super(message);
  }
}

export class CancelledError extends BeakerError {
  override readonly exitCode = 3;
  override readonly code = "cancelled";
  override name = "CancelledError";
  constructor(message = "cancelled") {
    super(message);
  }
}

export class AuthError extends BeakerError {
  override readonly exitCode = 4;
  override readonly code = "unauthenticated";
  override name = "AuthError";
}

/** The caller may not act on someone else's resource. Same exit code as not authenticated. */
export class ForbiddenError extends BeakerError {
  override readonly exitCode = 4;
  override readonly code = "forbidden";
  override name = "ForbiddenError";
}

export class NotFoundError extends BeakerError {
  override readonly exitCode = 5;
  override readonly code = "not_found";
  override name = "NotFoundError";
}

/** Too many failed token attempts from one address (or with one token id): HTTP 429, try again after a while. */
export class TooManyAttemptsError extends BeakerError {
  override readonly exitCode = 4;
  override readonly code = "rate_limited";
  override name = "TooManyAttemptsError";
  constructor(
    message: string,
    readonly retryAfterSeconds = 60,
  ) {
    super(message);
  }
}

/** A conflict, or not enough resources when the caller asked not to wait. */
export class ConflictError extends BeakerError {
  override readonly exitCode = 6;
  override readonly code = "conflict";
  override name = "ConflictError";
}

/** The session's container could not be created or started. */
export class SessionStartError extends BeakerError {
  override readonly exitCode = 125;
  override readonly code = "session_start";
  override name = "SessionStartError";
}

/** A file the user or admin wrote (config) is unreadable or invalid. */
export class ConfigError extends BeakerError {
  override readonly code = "config";
  override name = "ConfigError";
}

/** A dependency of the node (Docker, nvidia-smi) is not answering. */
export class UnavailableError extends BeakerError {
  override readonly code = "unavailable";
  override name = "UnavailableError";
}

/** The executor is restarting: the request may be sent again (with its ticket) once it is back. */
export class RestartingError extends BeakerError {
  override readonly code = "restarting";
  override name = "RestartingError";
}

/** Ctrl-C while the request waited in the node's queue: nothing was created and the queue holds nothing of it. */
export class CancelledWhileQueued extends BeakerError {
  override readonly exitCode = 130;
  override name = "CancelledWhileQueued";
  constructor() {
    super("cancelled; no session was created and nothing is left in the queue");
  }
}

/** Ctrl-C while Slurm held the job in its queue (exit 130, as a shell reports an interrupt). */
export class CancelledInSlurmQueue extends BeakerError {
  override readonly exitCode = 130;
  override name = "CancelledInSlurmQueue";
}

/** The self-update could not fetch, verify or install a release. */
export class UpdateError extends BeakerError {
  override name = "UpdateError";
}

/** ssh could not reach the node, or lost it: one line naming the node, exit 1. */
export class SshError extends BeakerError {
  override name = "SshError";
}

/** A command that only means something on a GPU node, run where there is none: one line that says so. */
export class NotANodeError extends BeakerError {
  override name = "NotANodeError";
  constructor(command: string, platform: string = process.platform) {
    const here = platform === "linux" ? "this machine has no executor" : `this is ${platform === "darwin" ? "a Mac" : platform}`;
    super(`'beaker ${command}' runs on a Linux GPU node and ${here}; from here, 'beaker cluster nodes CLUSTER' shows the nodes and their GPUs`);
  }
}

/** A request body over the server's limit: a usage error on the wire, HTTP 413. */
export class BodyTooLargeError extends UsageError {
  override name = "BodyTooLargeError";
  constructor(limit: number) {
    super(`body is larger than ${limit} bytes`);
  }
}

const byCode: Record<string, new (message: string) => BeakerError> = {
  error: BeakerError,
  usage: UsageError,
  cancelled: CancelledError,
  unauthenticated: AuthError,
  forbidden: ForbiddenError,
  not_found: NotFoundError,
  conflict: ConflictError,
  session_start: SessionStartError,
  config: ConfigError,
  unavailable: UnavailableError,
  restarting: RestartingError,
  rate_limited: TooManyAttemptsError,
};

/** Rebuilds a typed error from its wire form (`{code, message}`). */
export function errorFromCode(code: string, message: string): BeakerError {
  if (code === "usage") return new UsageError(message, null);
  const ErrorType = byCode[code] ?? BeakerError;
  return new ErrorType(message);
}

const httpStatusByCode: Record<string, number> = {
  usage: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  rate_limited: 429,
  unavailable: 503,
  restarting: 503,
};

/** The HTTP status the executor's API and the server answer an error with; 500 for anything untyped. */
export function httpStatusOf(err: unknown): number {
  if (err instanceof BodyTooLargeError) return 413;
  return err instanceof BeakerError ? (httpStatusByCode[err.code] ?? 500) : 500;
}

/** The stable `code` of an error on the wire. */
export function errorCodeOf(err: unknown): string {
  return err instanceof BeakerError ? err.code : "error";
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
