import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, join } from "node:path";

/**
 * The beaker binary mounted into every session is dynamically linked: on an image without the C library it was built
 * against (busybox, Alpine, distroless) it cannot start, so neither can `beaker ssh-server` inside. The executor is
 * that same binary, so the loader and libraries it runs with (read from /proc/self/maps) are exactly what the binary
 * needs. They are copied into `<stateDir>/runtime/<digest>` and mounted read-only at /usr/local/lib/beaker, the
 * loader as `ld.so`: `ld.so --library-path /usr/local/lib/beaker /usr/local/bin/beaker ...` then runs on any image,
 * and programs it starts (the user's shell) still use the image's own libraries.
 */

export interface LoadedLibraries {
  loader: string;
  libraries: string[];
}

/** The dynamic loader and shared libraries mapped into a process, from its /proc/PID/maps. Null for a static binary. Pure. */
export function parseLoadedLibraries(maps: string): LoadedLibraries | null {
  const paths = new Set<string>();
  for (const line of maps.split("\n")) {
    // address perms offset dev inode path; a library replaced on disk since it was loaded reads "PATH (deleted)".
    const path = line.split(/\s+/).slice(5).join(" ").replace(/ \(deleted\)$/, "");
    if (path.startsWith("/") && /\.so(\.[\d.]+)?$/.test(path)) paths.add(path);
  }
  const all = [...paths];
  const loader = all.find((p) => /^(ld-linux|ld-musl|ld64\.so|ld\.so)/.test(basename(p)));
  if (!loader) return null;
  return { loader, libraries: all.filter((p) => p !== loader) };
}

/**
 * The folder to mount at /usr/local/lib/beaker, made once per set of library files (named by their paths, sizes and
 * times, so a glibc upgrade makes a new folder and sessions still running keep theirs). Null when this process is not
 * dynamically linked or the copy fails: sessions then start without it, and SSH works on images with a C library.
 */
export function ensureBeakerRuntime(stateDir: string, maps?: string): string | null {
  try {
    const loaded = parseLoadedLibraries(maps ?? readFileSync("/proc/self/maps", "utf8"));
    if (!loaded) return null;
    const files = [{ source: loaded.loader, name: "ld.so" }, ...loaded.libraries.map((source) => ({ source, name: basename(source) }))];
    const digest = createHash("sha256");
    for (const file of files) {
      const stat = statSync(file.source);
      digest.update(`${file.source}\0${file.name}\0${stat.size}\0${stat.mtimeMs}\n`);
    }
    const dir = join(stateDir, "runtime", digest.digest("hex").slice(0, 16));
    if (existsSync(dir)) return dir;
    const temp = `${dir}.tmp-${process.pid}`;
    rmSync(temp, { recursive: true, force: true });
    mkdirSync(temp, { recursive: true, mode: 0o755 });
    for (const file of files) {
      copyFileSync(file.source, join(temp, file.name));
      chmodSync(join(temp, file.name), 0o755);
    }
    renameSync(temp, dir);
    return dir;
  } catch {
    return null;
  }
}
