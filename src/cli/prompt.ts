import { CancelledError, UsageError } from "../errors.ts";
import type { IO } from "./io.ts";

/** A hidden prompt (tokens, passphrases). Without a terminal it fails with the flag or variable to use instead. */
export async function promptSecret(io: IO, message: string, instead: string): Promise<string> {
  if (!io.canPrompt()) throw new UsageError(`${message.replace(/:$/, "")} is needed and there is no terminal to ask on; ${instead}`);
  const { password, isCancel } = await import("@clack/prompts");
  const value = await password({ message, mask: "*" });
  if (isCancel(value)) throw new CancelledError();
  return value.trim();
}
