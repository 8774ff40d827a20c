import { defineCommand } from "../../command.ts";

export const accountLogoutCommand = defineCommand({
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
});
