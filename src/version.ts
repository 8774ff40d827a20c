/** Build facts, replaced at compile time by scripts/build.ts through `--define`. */
declare const BEAKER_VERSION: string | undefined;
declare const BEAKER_COMMIT: string | undefined;
declare const BEAKER_TARGET: string | undefined;

export interface BuildInfo {
  version: string;
  commit: string;
  target: string;
}

export const buildInfo: BuildInfo = {
  version: typeof BEAKER_VERSION === "string" ? BEAKER_VERSION : "0.0.0-dev",
  commit: typeof BEAKER_COMMIT === "string" ? BEAKER_COMMIT : "unknown",
  target: typeof BEAKER_TARGET === "string" ? BEAKER_TARGET : `${process.platform}-${process.arch}`,
};

export function formatVersion(info: BuildInfo = buildInfo): string {
  return `beaker ${info.version} (${info.commit}, ${info.target})`;
}
