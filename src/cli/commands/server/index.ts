import { existsSync } from "node:fs";
import { defaultDbUrl } from "../../../server/db.ts";
import type { openStore } from "../../../server/run.ts";
import { UsageError } from "../../../errors.ts";
import { jsonOption, type CommandSpec, type NounSpec, type OptionSpec } from "../../command.ts";
import type { Factory } from "../../factory.ts";
import { printJson, printTable } from "../../output.ts";

const dbOption: OptionSpec = { flags: "--db <url>", description: `Store: sqlite:///path or postgres://... (env BEAKER_SERVER_DB; default ${defaultDbUrl})`, kind: "string" };

function dbUrl(flags: Record<string, unknown>, factory: Factory): string {
  return (flags.db as string | undefined) ?? factory.env.BEAKER_SERVER_DB ?? defaultDbUrl;
}

/** The server's code (store, API, pages) loads for the server commands alone, not at every CLI start. */
const loadServer = () => import("../../../server/run.ts");

/** Runs an admin action against the store and closes it, whatever happens. */
async function withStore<T>(flags: Record<string, unknown>, factory: Factory, action: (store: Awaited<ReturnType<typeof openStore>>) => Promise<T>): Promise<T> {
  const { openStore } = await loadServer();
  const store = await openStore(dbUrl(flags, factory));
  try {
    return await action(store);
  } finally {
    await store.db.close();
  }
}

function need(value: string | undefined, what: string): string {
  if (!value) throw new UsageError(`missing argument: ${what}`);
  return value;
}

const run: CommandSpec = {
  name: "run",
  summary: "Run the Beaker server: API, web pages and release files",
  options: [
    { flags: "--listen <addr>", description: "Address to listen on, PORT or HOST:PORT", default: "0.0.0.0:8080", kind: "string" },
    dbOption,
    { flags: "--releases <dir>", description: "Serve this folder at /releases/ (self-update channel)", kind: "string" },
  ],
  async run({ flags, factory }) {
    const releases = (flags.releases as string | undefined) ?? null;
    if (releases && !existsSync(releases)) throw new UsageError(`--releases ${releases} does not exist`);
    const { runServer } = await loadServer();
    await runServer({ listen: String(flags.listen ?? "0.0.0.0:8080"), db: dbUrl(flags, factory), releasesDir: releases });
  },
};

const user: NounSpec = {
  name: "user",
  summary: "Accounts",
  commands: [
    {
      name: "create",
      args: "<NAME>",
      summary: "Create an account and print its first token (shown once)",
      options: [{ flags: "--admin", description: "May see every session and node", kind: "boolean" }, dbOption, jsonOption],
      async run({ args, flags, factory }) {
        const created = await withStore(flags, factory, (s) => s.createUser(need(args[0], "NAME"), Boolean(flags.admin)));
        if (flags.json) return void printJson(factory.io, { name: created.user.name, admin: created.user.admin, token: created.token });
        factory.io.err.write(`created user ${created.user.name}${created.user.admin ? " (admin)" : ""}; their token, shown only now:\n`);
        factory.io.out.write(`${created.token}\n`);
      },
    },
    {
      name: "list",
      summary: "List accounts",
      options: [dbOption, jsonOption],
      async run({ flags, factory }) {
        const users = await withStore(flags, factory, (s) => s.listUsers());
        if (flags.json) return void printJson(factory.io, users);
        printTable(factory.io, ["NAME", "ADMIN", "TOKENS"], users.map((u) => [u.name, u.admin ? "yes" : "no", String(u.tokens)]));
      },
    },
    {
      name: "token",
      args: "<NAME>",
      summary: "Issue another token for an account (shown once)",
      options: [dbOption],
      async run({ args, flags, factory }) {
        const issued = await withStore(flags, factory, (s) => s.issueUserToken(need(args[0], "NAME")));
        factory.io.out.write(`${issued.token}\n`);
      },
    },
  ],
};

const token: NounSpec = {
  name: "token",
  summary: "Tokens",
  commands: [
    {
      name: "revoke",
      args: "<ID>",
      summary: "Revoke a token by its id (bkr_<id>_...) ; it stops working at once",
      options: [dbOption],
      async run({ args, flags, factory }) {
        const revoked = await withStore(flags, factory, (s) => s.revokeToken(need(args[0], "ID")));
        factory.io.err.write(`revoked ${revoked.kind} token ${revoked.id} of ${revoked.owner}\n`);
      },
    },
  ],
};

const cluster: NounSpec = {
  name: "cluster",
  summary: "Clusters",
  commands: [
    {
      name: "create",
      args: "<NAME>",
      summary: "Create a cluster",
      options: [dbOption],
      async run({ args, flags, factory }) {
        const name = need(args[0], "NAME");
        await withStore(flags, factory, (s) => s.createCluster(name));
        factory.io.err.write(`created cluster ${name}; add nodes with: beaker server node add HOSTNAME --cluster ${name}\n`);
      },
    },
  ],
};

const hostArg = (args: string[]) => need(args[0], "HOSTNAME");

const node: NounSpec = {
  name: "node",
  summary: "Nodes",
  commands: [
    {
      name: "add",
      args: "<HOSTNAME>",
      summary: "Add a node to a cluster and print the token its executor reports with",
      options: [{ flags: "--cluster <name>", description: "The node's cluster", kind: "string" }, dbOption],
      async run({ args, flags, factory }) {
        if (!flags.cluster) throw new UsageError("--cluster is required");
        const host = hostArg(args);
        const issued = await withStore(flags, factory, (s) => s.addNode(host, String(flags.cluster)));
        factory.io.err.write(
          `added ${host} to ${flags.cluster}. On ${host}, save this token in /etc/beaker/executor-token (mode 0600) and set server: in /etc/beaker/config.yml:\n`,
        );
        factory.io.out.write(`${issued.token}\n`);
      },
    },
    {
      name: "cordon",
      args: "<HOSTNAME>",
      summary: "Stop new sessions on a node (running ones go on)",
      options: [dbOption],
      async run({ args, flags, factory }) {
        await withStore(flags, factory, (s) => s.setCordoned(hostArg(args), true));
        factory.io.err.write(`cordoned ${args[0]}: no new sessions start there\n`);
      },
    },
    {
      name: "uncordon",
      args: "<HOSTNAME>",
      summary: "Let a cordoned node take new sessions again",
      options: [dbOption],
      async run({ args, flags, factory }) {
        await withStore(flags, factory, (s) => s.setCordoned(hostArg(args), false));
        factory.io.err.write(`uncordoned ${args[0]}\n`);
      },
    },
  ],
};

export const serverNoun: NounSpec = {
  name: "server",
  summary: "Run and administer the Beaker server (accounts, clusters, nodes)",
  commands: [run, user, token, cluster, node],
};
