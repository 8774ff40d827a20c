import { UsageError } from "../../../errors.ts";
import type { Factory } from "../../factory.ts";

/** `--server`, else the configured or this node's server; a usage error when none is known or it is not a URL. */
export async function requireServerUrl(factory: Factory, given: string | undefined): Promise<string> {
  const url = given?.replace(/\/+$/, "") ?? (await factory.serverUrl());
  if (!url) throw new UsageError("no Beaker server is known here: pass --server https://... (or 'beaker config set server URL')");
  if (!/^https?:\/\/\S+$/.test(url)) throw new UsageError(`--server ${url} must be an http:// or https:// URL`);
  return url;
}
