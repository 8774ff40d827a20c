import { AuthError } from "../errors.ts";
import { ServerClient } from "../server/client.ts";
import type { UserInfo } from "../server/types.ts";
import type { Factory } from "./factory.ts";
import { promptSecret } from "./prompt.ts";

const tries = 3;

/**
 * Asks for a Beaker user token on the terminal, checks it with the server, and keeps it in the user config (0600).
 * Three tries; without a terminal, an error that names the ways to give one.
 */
export async function loginInteractively(factory: Factory, serverUrl: string, why: string): Promise<{ user: UserInfo; token: string }> {
  const { io } = factory;
  if (!io.canPrompt()) {
    throw new AuthError(`${why}: set BEAKER_TOKEN, or run 'beaker account login' on a terminal (or 'beaker account login --token-stdin')`);
  }
  io.err.write(`${why}.\nAsk your Beaker admin for a user token (they run 'beaker server user create NAME'); you sign in at ${serverUrl} with the same token.\n`);
  for (let attempt = 1; attempt <= tries; attempt++) {
    const token = await promptSecret(io, "Beaker user token:", "set BEAKER_TOKEN");
    try {
      const user = await new ServerClient(serverUrl, token).whoami();
      await saveLogin(factory, serverUrl, token);
      io.err.write(`Logged in as ${user.name}\n`);
      return { user, token };
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      io.err.write(attempt < tries ? "That token was not accepted; try again.\n" : "");
    }
  }
  throw new AuthError(`${tries} tokens were refused by ${serverUrl}; ask your admin for a new one`);
}

export async function saveLogin(factory: Factory, serverUrl: string, token: string): Promise<void> {
  await factory.userConfig().update((config) => {
    config.user_token = token;
    config.server ??= serverUrl;
  });
}

/**
 * Runs a command that talks to the executor; when the node has a server and the executor wants a token, logs in
 * once (on a terminal) and runs it again with the new token.
 */
export async function withExecutorLogin<T>(factory: Factory, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (err) {
    if (!(err instanceof AuthError)) throw err;
    const server = (await factory.executor().health())?.server;
    if (!server || factory.env.BEAKER_TOKEN) throw err;
    const why = factory.userToken() ? `Your Beaker token was not accepted by ${server}` : `This node uses the Beaker server at ${server} and needs your user token`;
    const { token } = await loginInteractively(factory, server, why);
    factory.executor().token = token;
    return action();
  }
}
