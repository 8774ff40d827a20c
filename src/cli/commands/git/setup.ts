import { existsSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { join } from "node:path";
import { CancelledError, UsageError } from "../../../errors.ts";
import { emailProblem, tokenShapeProblem } from "../../../git/protocol.ts";
import { applySetup, type Helper, type SetupAnswers } from "../../../git/setup.ts";
import { defineCommand, type FlagsOf, type OptionSpec } from "../../command.ts";
import type { Factory } from "../../factory.ts";
import { gitDeps, hostFlag } from "./deps.ts";

const helpers: Array<{ value: Helper; label: string; hint: string }> = [
  { value: "cache", label: "cache", hint: "kept in memory for a while (--timeout), gone after that or a reboot" },
  { value: "store", label: "store", hint: "saved in ~/.git-credentials (0600), lasts across sessions; plain text on disk" },
  { value: "beaker", label: "beaker", hint: "saved in ~/.beaker/git-credentials (0600), only for this host, works inside sessions" },
];

function tokenPage(protocol: string, host: string): string {
  return host === "github.com"
    ? "https://github.com/settings/tokens/new?scopes=repo&description=beaker-session"
    : `${protocol}://${host}/settings/tokens (or your server's equivalent)`;
}

const setupOptions = [
    { flags: "--host <host>", description: "The git host (GitHub Enterprise and others too)", default: "github.com", kind: "string" },
    { flags: "--name <name>", description: "user.name for commits", kind: "string" },
    { flags: "--email <email>", description: "user.email for commits", kind: "string" },
    { flags: "--token-stdin", description: "Use a personal access token, read from stdin", kind: "boolean" },
    { flags: "--helper <helper>", description: "Where to keep the token: cache, store or beaker", kind: "string" },
    { flags: "--timeout <seconds>", description: "How long the cache helper keeps the token", kind: "number" },
    { flags: "--username <name>", description: "Username sent with the token (default x-access-token)", kind: "string" },
    { flags: "--ssh", description: "Use an SSH key (generated at ~/.ssh/id_ed25519 when missing)", kind: "boolean" },
    { flags: "--force", description: "With --yes --ssh: replace an existing key", kind: "boolean" },
    { flags: "-y, --yes", description: "Ask nothing: take the flags (for scripts)", kind: "boolean" },
] as const satisfies readonly OptionSpec[];

/** `--helper` as one of the helpers; a usage error for anything else. */
function helperFlag(text: string): Helper {
  const found = helpers.find((h) => h.value === text);
  if (!found) throw new UsageError(`--helper must be cache, store or beaker, not "${text}"`);
  return found.value;
}

/** Asks (or takes from flags) everything first; nothing is changed until every answer is in. */
async function gather(flags: FlagsOf<typeof setupOptions>, factory: Factory): Promise<SetupAnswers> {
  const { io } = factory;
  const interactive = !flags.yes;
  if (interactive && !io.canPrompt()) {
    throw new UsageError("beaker git setup asks questions and there is no terminal; for scripts: --yes --name N --email E, and --token-stdin [--helper H] or --ssh");
  }
  const { git } = gitDeps(factory);
  const { protocol, host } = hostFlag(flags.host);
  const p = await import("@clack/prompts");
  const answer = <T>(value: T): Exclude<T, symbol> => {
    if (p.isCancel(value)) {
      p.cancel("Nothing was changed.");
      throw new CancelledError();
    }
    return value as Exclude<T, symbol>;
  };
  if (interactive) p.intro(`Set up git for ${host}`);

  const currentName = git.getGlobal("user.name");
  const currentEmail = git.getGlobal("user.email");
  const name =
    flags.name ??
    (interactive
      ? answer(await p.text({ message: "Your name, for commits", initialValue: currentName ?? "", validate: (v) => (v?.trim() ? undefined : "a name is needed") }))
      : currentName);
  if (!name?.trim()) throw new UsageError("--name is needed (git has no user.name yet)");
  const email =
    flags.email ??
    (interactive ? answer(await p.text({ message: "Your email, for commits", initialValue: currentEmail ?? "", validate: (v) => emailProblem(v ?? "") ?? undefined })) : currentEmail);
  if (!email) throw new UsageError("--email is needed (git has no user.email yet)");
  const badEmail = emailProblem(email);
  if (badEmail) throw new UsageError(`--email ${email}: ${badEmail}`);

  const method: "token" | "ssh" = flags.ssh
    ? "ssh"
    : flags.tokenStdin
      ? "token"
      : interactive
        ? answer(
            await p.select({
              message: `How should git prove who you are to ${host}?`,
              options: [
                { value: "token" as const, label: "Personal access token over HTTPS", hint: "a token from your account settings; git sends it instead of a password" },
                { value: "ssh" as const, label: "SSH key", hint: "a new ed25519 key; you paste its public half into your account settings" },
              ],
            }),
          )
        : (() => {
            throw new UsageError("with --yes, choose --token-stdin or --ssh");
          })();

  if (method === "ssh") {
    const keyExists = existsSync(join(gitDeps(factory).home, ".ssh", "id_ed25519"));
    let writeKey = !keyExists;
    if (keyExists) {
      writeKey = interactive
        ? answer(await p.confirm({ message: "~/.ssh/id_ed25519 already exists. Replace it with a new key? (No keeps it and uses it)", initialValue: false }))
        : (flags.force ?? false);
    }
    let passphrase: string | null = null;
    if (writeKey && interactive) {
      for (;;) {
        const first = answer(await p.password({ message: "Passphrase for the key (empty for none)", mask: "*" }));
        if (!first) break;
        const again = answer(await p.password({ message: "The passphrase again", mask: "*" }));
        if (again === first) {
          passphrase = first;
          break;
        }
        p.log.warn("The two passphrases differ; try again.");
      }
    }
    return { protocol, host, name: name.trim(), email: email.trim(), auth: { kind: "ssh", writeKey, passphrase, comment: `${userInfo().username}@${hostname()}` } };
  }

  let token: string;
  if (flags.tokenStdin) {
    token = (await io.readStdin()).trim();
    const problem = tokenShapeProblem(token, host);
    if (problem) throw new UsageError(`--token-stdin: ${problem}`);
  } else {
    p.note(`Create one at ${tokenPage(protocol, host)}\nwith the "repo" scope, then paste it here (it is not shown).`, "Personal access token");
    token = answer(await p.password({ message: `Token for ${host}`, mask: "*", validate: (v) => tokenShapeProblem(v ?? "", host) ?? undefined })).trim();
  }
  const helper =
    flags.helper !== undefined
      ? helperFlag(flags.helper)
      : interactive
        ? answer(await p.select({ message: "Where should git keep it?", options: helpers, initialValue: "beaker" as Helper }))
        : "beaker";
  let timeoutSeconds = flags.timeout ?? 3600;
  if (helper === "cache" && interactive && flags.timeout === undefined) {
    timeoutSeconds = Number(
      answer(await p.text({ message: "Forget it after how many seconds?", initialValue: "3600", validate: (v) => (/^\d+$/.test(v ?? "") && Number(v) > 0 ? undefined : "a whole number of seconds") })),
    );
  }
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds <= 0) throw new UsageError("--timeout must be a whole number of seconds");
  const username = flags.username ?? "x-access-token";
  return { protocol, host, name: name.trim(), email: email.trim(), auth: { kind: "token", username, token, helper, timeoutSeconds } };
}

export const gitSetupCommand = defineCommand({
  name: "setup",
  summary: "Set up git to push from here: your identity, and a token (cache, store or Beaker's helper) or an SSH key",
  options: setupOptions,
  examples: ["beaker git setup", "echo $TOKEN | beaker git setup --yes --name 'Ada L' --email ada@example.org --token-stdin --helper store"],
  async run({ flags, factory }) {
    const answers = await gather(flags, factory);
    const { changes, publicKey } = await applySetup(answers, gitDeps(factory));
    const { io } = factory;
    io.err.write(changes.length ? "\nChanged:\n" : "\nNothing needed changing.\n");
    for (const c of changes) io.err.write(`  ${c.what}\n      undo: ${c.undo}\n`);
    if (publicKey) {
      const page = answers.host === "github.com" ? "https://github.com/settings/ssh/new" : `${answers.protocol}://${answers.host}/settings/ssh/new (or your server's equivalent)`;
      io.err.write(`\nYour public key; paste it at ${page}:\n`);
      io.out.write(`${publicKey}\n`);
      io.err.write(`Then clone with git@${answers.host.replace(/:\d+$/, "")}:OWNER/REPO.git\n`);
    }
  },
});
