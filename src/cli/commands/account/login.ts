import { UsageError } from "../../../errors.ts";
import { ServerClient } from "../../../server/client.ts";
import { defineCommand } from "../../command.ts";
import { loginInteractively, recordLogin } from "../../login.ts";
import { requireServerUrl } from "./shared.ts";

export const accountLoginCommand = defineCommand({
  name: "login",
  summary: "Log in with your Beaker user token (asked with a hidden prompt, or read from stdin)",
  options: [
    { flags: "--server <url>", description: "The Beaker server (default: your config, else this node's); saved in your config", kind: "string" },
    { flags: "--token-stdin", description: "Read the token from stdin instead of asking", kind: "boolean" },
  ],
  async run({ flags, factory }) {
    const url = await requireServerUrl(factory, flags.server);
    if (!flags.tokenStdin) return void (await loginInteractively(factory, url, `Logging in to ${url}`));
    const token = (await factory.io.readStdin()).trim();
    if (!token) throw new UsageError("--token-stdin: nothing on stdin");
    await recordLogin(factory, url, token, await new ServerClient(url, token).whoami());
  },
});
