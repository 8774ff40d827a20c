/** git's credential helper protocol: `key=value` lines, ended by a blank line or the end of input. Pure. */
export type Credential = Record<string, string>;

export function parseCredential(text: string): Credential {
  const out: Credential = {};
  for (const line of text.split("\n")) {
    const clean = line.replace(/\r$/, "");
    if (clean === "") break;
    const eq = clean.indexOf("=");
    if (eq > 0) out[clean.slice(0, eq)] = clean.slice(eq + 1);
  }
  return out;
}

export function formatCredential(fields: Credential): string {
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined && !/[\n\0]/.test(v))
    .map(([k, v]) => `${k}=${v}\n`)
    .join("");
}

/** "https://github.example.com:8443/" or "github.com" -> protocol and host (with port), as git names them. */
export function parseHost(input: string): { protocol: string; host: string } {
  const m = /^(?:(https?):\/\/)?([^/\s]+?)\/?$/.exec(input.trim());
  if (!m) throw new Error(`"${input}" is not a host like github.com or https://git.example.com`);
  return { protocol: m[1] ?? "https", host: m[2]!.toLowerCase() };
}

/** What a token should look like: GitHub's own prefixes on github.com, anything token-like elsewhere. */
export function tokenShapeProblem(token: string, host: string): string | null {
  if (/\s/.test(token)) return "a token has no spaces";
  if (host === "github.com") {
    if (/^(ghp_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82}|gho_[A-Za-z0-9]{36})$/.test(token)) return null;
    return "GitHub tokens start with ghp_ (classic) or github_pat_ (fine-grained)";
  }
  return token.length >= 8 ? null : "that is too short for a token";
}

export function emailProblem(email: string): string | null {
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email.trim()) ? null : "that does not look like an email address";
}
