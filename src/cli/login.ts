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
      await recordLogin(factory, serverUrl, token, user);
      return { user, token };
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      io.err.write(attempt < tries ? "That token was not accepted; try again.\n" : "");
    }
  }
  throw new AuthError(`${tries} tokens were refused by ${serverUrl}; ask your admin for a new one`);
}

/**
 * Keeps the token with the server it was checked against (a token means nothing to another server). Returns what the
 * user should hear: that this server replaced another in the config, or that BEAKER_SERVER still points elsewhere.
 */
export async function saveLogin(factory: Factory, serverUrl: string, token: string): Promise<string[]> {
  const store = factory.userConfig();
  let before: string | undefined;
  await store.update((config) => {
    before = config.server;
    config.user_token = token;
    config.server = serverUrl;
  });
  const same = (a: string, b: string) => a.replace(/\/+$/, "") === b.replace(/\/+$/, "");
  const fromEnv = factory.env.BEAKER_SERVER;
  return [
    ...(before !== undefined && !same(before, serverUrl) ? [`saved the server ${serverUrl} in ${store.path} (it was ${before})`] : []),
    ...(fromEnv && !same(fromEnv, serverUrl) ? [`note: BEAKER_SERVER=${fromEnv} in your environment still overrides it`] : []),
  ];
}

/** After the server accepted a token: keep both, and say who this is. */
export async function recordLogin(factory: Factory, serverUrl: string, token: string, user: UserInfo): Promise<void> {
  const notes = await saveLogin(factory, serverUrl, token);
  for (const line of [`Logged in as ${user.name}`, ...notes]) factory.io.err.write(`${line}\n`);
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
    // Run over ssh by a CLI elsewhere (BEAKER_NO_LOGIN_PROMPT): that CLI holds the token and sends it on stdin.
    if (!server || factory.env.BEAKER_TOKEN || factory.env.BEAKER_NO_LOGIN_PROMPT) throw err;
    const why = factory.userToken() ? `Your Beaker token was not accepted by ${server}` : `This node uses the Beaker server at ${server} and needs your user token`;
    const { token } = await loginInteractively(factory, server, why);
    factory.executor().token = token;
    return action();
  }
}
