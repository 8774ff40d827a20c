import { defineCommand, jsonOption } from "../../command.ts";
import { printJson } from "../../output.ts";

export const accountWhoamiCommand = defineCommand({
  name: "whoami",
  summary: "Who the server says you are",
  options: [jsonOption],
  async run({ flags, factory }) {
    const server = await factory.server();
    const user = await server.whoami();
    if (flags.json) return void printJson(factory.io, { ...user, server: server.baseUrl });
    factory.io.out.write(`${user.name}${user.admin ? " (admin)" : ""} on ${server.baseUrl}\n`);
  },
});
