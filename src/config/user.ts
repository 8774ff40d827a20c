import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { ConfigError, UsageError } from "../errors.ts";
import { withFileLock } from "./lock.ts";
import { parseYamlMapping } from "./yaml-file.ts";
import { writeFileAtomic } from "../util/write-atomic.ts";

/** The keys a user may set, with how each is checked. Secrets are masked when shown and never taken from argv. */
export interface KeySpec {
  description: string;
  secret?: boolean;
  validate?: (value: string) => string | undefined;
  env?: string;
}

const url = (value: string) => (/^https?:\/\/[^\s/]+/.test(value) ? undefined : "must be an http:// or https:// URL");

export const userConfigKeys: Record<string, KeySpec> = {
  server: { description: "Address of the Beaker server", validate: url, env: "BEAKER_SERVER" },
  user_token: { description: "Your Beaker user token", secret: true, env: "BEAKER_TOKEN" },
  default_image: {
    description: "Image for new sessions",
    validate: (v) => (/^[\w./:@-]+$/.test(v) ? undefined : "must be an image reference like ubuntu:22.04"),
  },
  detach_keys: {
    description: "Key sequence that detaches from a session",
    validate: (v) => (/^(ctrl-[a-z@[\\\]^_]|[a-z]),?/i.test(v) ? undefined : 'must look like "ctrl-p,ctrl-q"'),
  },
  default_cluster: {
    description: "The cluster `beaker session create` uses from a machine without an executor (a laptop)",
    validate: (v) => (/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(v) ? undefined : "must be a cluster name"),
  },
  update_url: { description: "Where `beaker upgrade` looks for releases", validate: url, env: "BEAKER_UPDATE_URL" },
  reconnect_timeout: {
    description: "Seconds an attached terminal or a waiting request waits for a restarting executor (default 60)",
    validate: (v) => (/^\d{1,5}$/.test(v) && Number(v) <= 86400 ? undefined : "must be a whole number of seconds, at most 86400"),
  },
};

export type UserConfig = Record<string, string>;

export function userConfigPath(env: Record<string, string | undefined>): string {
  return env.BEAKER_CONFIG || join(env.HOME || homedir(), ".beaker", "config.yml");
}

export function maskSecret(value: string): string {
  return value.length <= 8 ? "********" : `${"*".repeat(8)}${value.slice(-4)}`;
}

/** The user's config file: 0700 directory, 0600 file, atomic and locked writes. */
export class UserConfigStore {
  constructor(
    readonly path: string,
    private readonly warn: (message: string) => void,
  ) {}

  read(): UserConfig {
    if (!existsSync(this.path)) return {};
    this.tightenPermissions();
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      throw new ConfigError(`cannot read ${this.path}: ${(err as Error).message}`);
    }
    const raw = parseYamlMapping(text, this.path);
    const config: UserConfig = {};
    for (const [key, value] of Object.entries(raw)) {
      if (value === null || value === undefined) continue;
      if (typeof value === "object") throw new ConfigError(`${this.path}: "${key}" must be a single value`);
      config[key] = String(value);
    }
    return config;
  }

  /** Read-modify-write under a lock; the mutation sees the latest file, so concurrent writers never lose updates. */
  async update(mutate: (config: UserConfig) => void): Promise<UserConfig> {
    this.ensureDirectory();
    return withFileLock(`${this.path}.lock`, () => {
      const config = this.read();
      mutate(config);
      writeFileAtomic(this.path, Bun.YAML.stringify(config, null, 2) + "\n", 0o600);
      return config;
    });
  }

  private ensureDirectory(): void {
    const dir = dirname(this.path);
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const mode = statSync(dir).mode & 0o777;
    if (mode & 0o077 && dir.endsWith(".beaker")) {
      chmodSync(dir, 0o700);
      this.warn(`${dir} was readable by others (mode ${mode.toString(8)}); changed it to 700`);
    }
  }

  private tightenPermissions(): void {
    const mode = statSync(this.path).mode & 0o777;
    if (mode & 0o077) {
      try {
        chmodSync(this.path, 0o600);
        this.warn(`${this.path} was readable by others (mode ${mode.toString(8)}); changed it to 600`);
      } catch (err) {
        this.warn(`${this.path} is readable by others (mode ${mode.toString(8)}) and could not be fixed: ${(err as Error).message}`);
      }
    }
  }
}

export function checkKey(key: string): KeySpec {
  const spec = userConfigKeys[key];
  if (!spec) {
    const known = Object.keys(userConfigKeys);
    throw new UsageError(`unknown config key "${key}"; known keys: ${known.join(", ")}`);
  }
  return spec;
}
