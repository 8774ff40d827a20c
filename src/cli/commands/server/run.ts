import { existsSync } from "node:fs";
import { UsageError } from "../../../errors.ts";
import { checkPortsDomain } from "../../../server/ports/host.ts";
import { defineCommand } from "../../command.ts";
import { dbOption, dbUrl, loadServer } from "./shared.ts";

export const serverRunCommand = defineCommand({
  name: "run",
  summary: "Run the Beaker server: API, web pages and release files",
  options: [
    { flags: "--listen <addr>", description: "Address to listen on, PORT or HOST:PORT", default: "0.0.0.0:8080", kind: "string" },
    dbOption,
    { flags: "--releases <dir>", description: "Serve this folder at /releases/ (self-update channel)", kind: "string" },
    { flags: "--ports-domain <domain>", description: "Serve sessions' ports in the browser at ID-PORT.DOMAIN (wildcard DNS and certificate)", kind: "string" },
  ],
  async run({ flags, factory }) {
    const releases = flags.releases ?? null;
    if (releases && !existsSync(releases)) throw new UsageError(`--releases ${releases} does not exist`);
    const portsDomain = flags.portsDomain ?? null;
    const problem = portsDomain === null ? null : checkPortsDomain(portsDomain);
    if (problem) throw new UsageError(`--ports-domain: ${problem}`);
    const { runServer } = await loadServer();
    await runServer({ listen: flags.listen, db: dbUrl(flags.db, factory), releasesDir: releases, portsDomain: portsDomain?.toLowerCase() ?? null });
  },
});
