/** Release versions: `MAJOR.MINOR.PATCH` with an optional `-pre.release`. One parser for the manifest, the flag and the build. */
const versionPattern = /^(\d+)\.(\d+)\.(\d+)(?:-([\w.]+))?$/;

export interface Version {
  nums: [number, number, number];
  pre: string | undefined;
}

/** The parts of a version, or null when it is not one. Pure. */
export function parseVersion(text: string): Version | null {
  const m = versionPattern.exec(text);
  return m ? { nums: [Number(m[1]), Number(m[2]), Number(m[3])], pre: m[4] } : null;
}

export function isVersion(text: string): boolean {
  return parseVersion(text) !== null;
}

/** Semantic version order: -1, 0, 1 (a pre-release sorts before its release). Pure. */
export function compareVersions(a: string, b: string): number {
  const x = parseLoose(a);
  const y = parseLoose(b);
  for (let i = 0; i < 3; i++) if ((x.nums[i] ?? 0) !== (y.nums[i] ?? 0)) return (x.nums[i] ?? 0) < (y.nums[i] ?? 0) ? -1 : 1;
  if (x.pre === y.pre) return 0;
  if (x.pre === undefined) return 1;
  if (y.pre === undefined) return -1;
  return x.pre < y.pre ? -1 : 1;
}

/** A version as written, even a short one (`1.2`) read from an old state file: missing parts count as 0. */
function parseLoose(text: string): { nums: number[]; pre: string | undefined } {
  const strict = parseVersion(text);
  if (strict) return strict;
  const [core, pre] = text.split("-", 2) as [string, string | undefined];
  return { nums: core.split(".").map(Number), pre };
}
