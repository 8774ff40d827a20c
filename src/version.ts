/** Build facts, replaced at compile time by scripts/build.ts through `--define`. */
declare const BEAKER_VERSION: string | undefined;
declare const BEAKER_COMMIT: string | undefined;
declare const BEAKER_TARGET: string | undefined;
declare const BEAKER_RELEASE_PUBLIC_KEY: string | undefined;
declare const BEAKER_DEFAULT_UPDATE_URL: string | undefined;

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

/** The Ed25519 key (raw, base64) release manifests must be signed with: release-key.pub, or the build's override. */
export const releasePublicKey: string = typeof BEAKER_RELEASE_PUBLIC_KEY === "string" ? BEAKER_RELEASE_PUBLIC_KEY : "";

/** Where `beaker upgrade` looks when nothing else says (empty: it must be configured). */
export const defaultUpdateUrl: string = typeof BEAKER_DEFAULT_UPDATE_URL === "string" ? BEAKER_DEFAULT_UPDATE_URL : "";

export function formatVersion(info: BuildInfo = buildInfo): string {
  return `beaker ${info.version} (${info.commit}, ${info.target})`;
}
