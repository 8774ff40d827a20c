import { UsageError } from "../../../errors.ts";
import { ServerClient } from "../../../server/client.ts";
import { jsonOption, type CommandSpec, type NounSpec } from "../../command.ts";
import { loginInteractively, recordLogin, saveLogin } from "../../login.ts";
import { printJson } from "../../output.ts";
import type { Factory } from "../../factory.ts";

async function requireServerUrl(factory: Factory, given: unknown): Promise<string> {
  const url = (given as string | undefined)?.replace(/\/+$/, "") ?? (await factory.serverUrl());
  if (!url) throw new UsageError("no Beaker server is known here: pass --server https://... (or 'beaker config set server URL')");
  if (!/^https?:\/\/\S+$/.test(url)) throw new UsageError(`--server ${url} must be an http:// or https:// URL`);
  return url;
}

const login: CommandSpec = {
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
};

const logout: CommandSpec = {
  name: "logout",
  summary: "Forget your token on this machine",
  async run({ factory }) {
    const store = factory.userConfig();
    let had = false;
    await store.update((config) => {
      had = config.user_token !== undefined;
      delete config.user_token;
    });
    factory.io.err.write(had ? `logged out: removed your token from ${store.path}\n` : "you were not logged in\n");
    if (factory.env.BEAKER_TOKEN) factory.io.err.write("note: BEAKER_TOKEN is still set in your environment\n");
  },
};

const whoami: CommandSpec = {
  name: "whoami",
  summary: "Who the server says you are",
  options: [jsonOption],
  async run({ flags, factory }) {
    const server = await factory.server();
    const user = await server.whoami();
    if (flags.json) return void printJson(factory.io, { ...user, server: server.baseUrl });
    factory.io.out.write(`${user.name}${user.admin ? " (admin)" : ""} on ${server.baseUrl}\n`);
  },
};

const token: NounSpec = {
  name: "token",
  summary: "Your token",
  commands: [
    {
      name: "rotate",
      summary: "Replace your token with a new one (the old one stops working) and save it here",
      async run({ factory }) {
        const server = await factory.server();
        const { token: fresh } = await server.rotateToken();
        const notes = await saveLogin(factory, server.baseUrl, fresh);
        factory.io.err.write(`rotated: the old token no longer works; the new one is saved in ${factory.userConfig().path}\n`);
        for (const line of notes) factory.io.err.write(`${line}\n`);
      },
    },
  ],
};

export const accountNoun: NounSpec = { name: "account", summary: "Log in to the Beaker server, and your token", commands: [login, logout, whoami, token] };
