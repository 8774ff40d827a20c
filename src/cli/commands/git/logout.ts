import { existsSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { logout } from "../../../git/setup.ts";
import { defineCommand } from "../../command.ts";
import { gitDeps, hostFlag } from "./deps.ts";

export const gitLogoutCommand = defineCommand({
  name: "logout",
  summary: "Forget your token for a host, wherever git keeps it (SSH keys stay unless --ssh)",
  options: [
    { flags: "--host <host>", description: "The git host", default: "github.com", kind: "string" },
    { flags: "--ssh", description: "Also delete ~/.ssh/id_ed25519 and its .pub", kind: "boolean" },
    { flags: "-y, --yes", description: "Do not ask (delete an emptied ~/.git-credentials)", kind: "boolean" },
  ],
  async run({ flags, factory }) {
    const { io } = factory;
    const target = hostFlag(flags.host);
    const deps = gitDeps(factory);
    const done = await logout(deps, target.protocol, target.host, { removeSshKey: flags.ssh ?? false });
    for (const line of done) io.err.write(`${line}\n`);
    if (done.length === 0) io.err.write(`no token for ${target.host} was stored\n`);
    const file = join(deps.home, ".git-credentials");
    if (existsSync(file) && readFileSync(file, "utf8").trim() === "") {
      let remove = flags.yes ?? false;
      if (!remove && io.canPrompt()) {
        const p = await import("@clack/prompts");
        const answer = await p.confirm({ message: `${file} is empty now. Delete it?`, initialValue: true });
        remove = answer === true;
      }
      if (remove) {
        unlinkSync(file);
        io.err.write(`deleted the empty ${file}\n`);
      } else io.err.write(`${file} is empty; delete it with: rm ${file}\n`);
    }
  },
});
