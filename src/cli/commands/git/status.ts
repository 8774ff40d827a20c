import { join } from "node:path";
import { maskSecret } from "../../../config/user.ts";
import { parseCredential } from "../../../git/protocol.ts";
import { readIfExists } from "../../../git/ssh.ts";
import { defineCommand, jsonOption } from "../../command.ts";
import { printJson } from "../../output.ts";
import { gitDeps } from "./deps.ts";

export const gitStatusCommand = defineCommand({
  name: "status",
  summary: "Your git identity, credential helpers, stored tokens (masked) and SSH keys",
  options: [jsonOption],
  async run({ flags, factory }) {
    const { git, home, store } = gitDeps(factory);
    const helperLines = git.run(["config", "--global", "--get-regexp", "^credential\\..*helper$"]).stdout.split("\n").filter(Boolean);
    const hosts = new Map<string, string[]>();
    for (const line of helperLines) {
      const m = /^credential\.(?:(https?):\/\/([^ ]+?)\.)?helper(?: (.*))?$/.exec(line);
      if (!m) continue;
      const url = m[2] ? `${m[1]}://${m[2]}` : "(all hosts)";
      if (m[3]) hosts.set(url, [...(hosts.get(url) ?? []), m[3]]);
      else hosts.set(url, hosts.get(url) ?? []);
    }
    for (const e of store.hosts()) if (!hosts.has(`${e.protocol}://${e.host}`)) hosts.set(`${e.protocol}://${e.host}`, []);
    const credentials = [...hosts.entries()].map(([url, helpers]) => {
      let token: string | null = null;
      if (url !== "(all hosts)") {
        // Ask the helpers (never a prompt): what would git send?
        const [protocol, host] = url.split("://") as [string, string];
        const filled = git.run(["credential", "fill"], `protocol=${protocol}\nhost=${host}\n\n`);
        if (filled.code === 0) token = parseCredential(filled.stdout).password ?? null;
      }
      return { url, helpers, token: token ? maskSecret(token) : null };
    });
    const publicKey = readIfExists(join(home, ".ssh", "id_ed25519.pub")).trim() || null;
    const status = {
      name: git.getGlobal("user.name"),
      email: git.getGlobal("user.email"),
      credentials,
      sshKey: publicKey ? { path: join(home, ".ssh", "id_ed25519"), publicKey: `${publicKey.split(" ")[0]} …${publicKey.split(" ")[1]?.slice(-12) ?? ""} ${publicKey.split(" ").slice(2).join(" ")}`.trim() } : null,
    };
    if (flags.json) return void printJson(factory.io, status);
    const out = factory.io.out;
    out.write(`identity: ${status.name ?? "(no user.name)"} <${status.email ?? "no user.email"}>\n`);
    if (credentials.length === 0) out.write("tokens:   none configured (beaker git setup)\n");
    for (const c of credentials) out.write(`${c.url}: helper ${c.helpers.filter(Boolean).join(", ") || "(none)"}; token ${c.token ?? "not stored"}\n`);
    out.write(`ssh key:  ${status.sshKey ? `${status.sshKey.path} (${status.sshKey.publicKey})` : "none"}\n`);
  },
});
