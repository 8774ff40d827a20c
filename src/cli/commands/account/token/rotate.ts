import { defineCommand } from "../../../command.ts";
import { saveLogin } from "../../../login.ts";

export const accountTokenRotateCommand = defineCommand({
  name: "rotate",
  summary: "Replace your token with a new one (the old one stops working) and save it here",
  async run({ factory }) {
    const server = await factory.server();
    const { token: fresh } = await server.rotateToken();
    const notes = await saveLogin(factory, server.baseUrl, fresh);
    factory.io.err.write(`rotated: the old token no longer works; the new one is saved in ${factory.userConfig().path}\n`);
    for (const line of notes) factory.io.err.write(`${line}\n`);
  },
});
