/**
 * Quoting for the command line ssh hands to the node's login shell. ssh joins its arguments with spaces into one
 * string that the remote shell parses again, so every argument is quoted here, once, for a POSIX shell (sh, bash,
 * dash, zsh): inside single quotes nothing is special (not `$`, `;`, `"`, `\` or a newline) except the single quote
 * itself, which is written as `'\''`. Pure.
 */

/** Characters no POSIX shell treats specially in a word; such words stay readable in `ps` and logs. */
const plain = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function shellQuote(arg: string): string {
  if (plain.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** One command line whose words, after the remote shell's parsing, are exactly `argv`. */
export function shellCommand(argv: string[]): string {
  return argv.map(shellQuote).join(" ");
}
