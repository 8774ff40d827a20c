/**
 * A failed connection in Beaker's words. Bun's fetch errors carry an errno-like `code` and a message written for the
 * library's users (`ECONNRESET: The socket connection was closed unexpectedly. For more information, pass 'verbose:
 * true'...`): users get the first, said plainly; the error itself stays attached as the `cause` for --debug.
 */
const reasons: Record<string, string> = {
  ECONNREFUSED: "nothing accepts connections there",
  ENOENT: "there is no socket there",
  ECONNRESET: "the connection was closed before the answer was complete",
  EPIPE: "the connection was closed before the answer was complete",
  ETIMEDOUT: "the connection timed out",
  ENOTFOUND: "the host name does not resolve",
  EAI_AGAIN: "the host name does not resolve (DNS did not answer)",
  EHOSTUNREACH: "the host is unreachable",
  ENETUNREACH: "the network is unreachable",
  EACCES: "permission denied",
  CERT_HAS_EXPIRED: "its TLS certificate has expired",
  DEPTH_ZERO_SELF_SIGNED_CERT: "its TLS certificate is self-signed and not trusted here",
  SELF_SIGNED_CERT_IN_CHAIN: "its TLS certificate chain is not trusted here",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "its TLS certificate is not trusted here",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "its TLS certificate is not trusted here",
  ERR_TLS_CERT_ALTNAME_INVALID: "its TLS certificate is for another host name",
};

/** Why a connection failed, in a few plain words. */
export function connectionFailure(err: unknown): string {
  const e = err as { name?: string; code?: string } | null;
  if (e?.name === "TimeoutError") return "no answer in time";
  return (e?.code && reasons[e.code]) ?? (e?.code ? `the connection failed (${e.code})` : "the connection failed");
}

/** Whether an error is a failed or broken connection (as opposed to a bug), by its errno-like code. */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && (code in reasons || /^E[A-Z]+$/.test(code) || /CERT|TLS/.test(code));
}
