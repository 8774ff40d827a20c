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
};

/** Rebuilds a typed error from its wire form (`{code, message}`). */
export function errorFromCode(code: string, message: string): BeakerError {
  if (code === "usage") return new UsageError(message, null);
  const ErrorType = byCode[code] ?? BeakerError;
  return new ErrorType(message);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
