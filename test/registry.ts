/**
 * A minimal Docker registry (v2 API, read-only) serving local images, so the real pull path can be tested where no
 * registry is reachable. Blobs are sent slowly when asked, so a pull's progress can be watched.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createTar } from "../src/runtime/docker/tar.ts";

interface Blob {
  body: Uint8Array;
  type: string;
}

export class TestRegistry {
  private blobs = new Map<string, Blob>();
  private manifests = new Map<string, { body: string; digest: string }>();
  private server: Server | null = null;
  /** Bytes per 50 ms when streaming blobs; 0 sends them at once. */
  throttle = 0;

  get host(): string {
    return `127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  /** Serves the local image `source` as `name:tag` (from `docker save`, layers gzipped as a registry stores them). */
  addImage(source: string, name: string, tag: string, options: { extraLayerBytes?: number } = {}): void {
    const dir = mkdtempSync(join(tmpdir(), "beaker-registry-"));
    try {
      const save = Bun.spawnSync(["sh", "-c", `docker save "$1" | tar -x -C "$2"`, "sh", source, dir], { stderr: "pipe" });
      if (save.exitCode !== 0) throw new Error(`docker save ${source}: ${save.stderr}`);
      const [entry] = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as Array<{ Config: string; Layers: string[] }>;
      const tars: Uint8Array[] = entry!.Layers.map((l) => new Uint8Array(readFileSync(join(dir, l))));
      const imageConfig = JSON.parse(readFileSync(join(dir, entry!.Config), "utf8")) as { rootfs: { diff_ids: string[] }; history?: object[] };
      if (options.extraLayerBytes) {
        // A layer of random bytes no engine has yet, so the pull really downloads something.
        const tar = createTar([{ name: "pulltest.bin", body: new Uint8Array(randomBytes(options.extraLayerBytes)), mode: 0o644 }]);
        tars.push(tar);
        imageConfig.rootfs.diff_ids.push(digest(tar));
        imageConfig.history?.push({ created: new Date().toISOString(), created_by: "beaker test registry" });
      }
      const config = this.put(new TextEncoder().encode(JSON.stringify(imageConfig)), "application/vnd.docker.container.image.v1+json");
      const layers = tars.map((t) => this.put(Bun.gzipSync(t as Uint8Array<ArrayBuffer>), "application/vnd.docker.image.rootfs.diff.tar.gzip"));
      const body = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.docker.distribution.manifest.v2+json", config, layers });
      this.manifests.set(`${name}:${tag}`, { body, digest: digest(new TextEncoder().encode(body)) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private put(body: Uint8Array, type: string) {
    const d = digest(body);
    this.blobs.set(d, { body, type });
    return { mediaType: type, size: body.length, digest: d };
  }

  /** node:http rather than Bun.serve: a streamed blob must still carry its Content-Length, as real registries send it. */
  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req.method ?? "GET", req.url ?? "/", res));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
  }

  stop(): void {
    this.server?.close();
    this.server?.closeAllConnections();
  }

  private async handle(method: string, url: string, res: ServerResponse): Promise<void> {
    const path = new URL(url, "http://x").pathname;
    const send = (status: number, headers: Record<string, string>, body: string | Uint8Array | null) => {
      const length = body === null ? 0 : typeof body === "string" ? Buffer.byteLength(body) : body.length;
      res.writeHead(status, { "content-length": String(length), ...headers });
      res.end(method === "HEAD" ? undefined : body ?? undefined);
    };
    const error = (code: string, message: string) => send(404, { "content-type": "application/json" }, JSON.stringify({ errors: [{ code, message }] }));
    if (path === "/v2/" || path === "/v2") return send(200, { "content-type": "application/json", "docker-distribution-api-version": "registry/2.0" }, "{}");
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
    if (manifest) {
      const found = this.manifests.get(`${manifest[1]}:${manifest[2]}`) ?? [...this.manifests.values()].find((m) => m.digest === manifest[2]);
      if (!found) return error("MANIFEST_UNKNOWN", "manifest unknown");
      return send(200, { "content-type": "application/vnd.docker.distribution.manifest.v2+json", "docker-content-digest": found.digest }, found.body);
    }
    const blob = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]+)$/.exec(path);
    if (!blob) return error("NAME_UNKNOWN", "repository name not known to registry");
    const found = this.blobs.get(blob[1]!);
    if (!found) return error("BLOB_UNKNOWN", "blob unknown");
    const headers = { "content-type": found.type, "docker-content-digest": blob[1]! };
    if (this.throttle <= 0 || method === "HEAD") return send(200, headers, found.body);
    res.writeHead(200, { "content-length": String(found.body.length), ...headers });
    for (let offset = 0; offset < found.body.length && !res.destroyed; offset += this.throttle) {
      res.write(found.body.subarray(offset, offset + this.throttle));
      await Bun.sleep(50); // the throttle itself: a slow link, not a wait in a test
    }
    res.end();
  }
}

function digest(body: Uint8Array): string {
  return `sha256:${new Bun.CryptoHasher("sha256").update(body).digest("hex")}`;
}

