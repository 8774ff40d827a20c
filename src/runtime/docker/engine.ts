import type Dockerode from "dockerode";
import type { Duplex } from "node:stream";
import { SessionStartError, UnavailableError } from "../../errors.ts";
import type { PublishedState } from "./ports.ts";
import { readFirstFile } from "./tar.ts";
import { dockerMessage, dockerStatus, isDockerDown, isNotFound } from "./errors.ts";
import type { ExecOptions } from "./exec.ts";

/** A network of the admin's naming, not one of Docker's own (`none`, `bridge`, `host`, `default`, `container:ID`). */
export function isUserDefinedNetwork(name: string): boolean {
  return !["none", "bridge", "host", "default"].includes(name) && !name.startsWith("container:");
}

export interface ManagedContainer {
  id: string;
  sessionId: string;
  state: string;
  labels: Record<string, string>;
  image: string;
  created: number;
  ports: string[];
  mounts: string[];
  /** From Docker's "Exited (N) ..." status; null while running. */
  exitCode: number | null;
}

export interface PullProgress {
  status: string;
  layer?: string;
  current?: number;
  total?: number;
}

/** What a session needs to know of an image's filesystem. */
export interface ImageFacts {
  passwd: string | null;
  group: string | null;
  hasEtc: boolean;
  hasBash: boolean;
  hasShell: boolean;
}

/** The engine calls the session manager makes, by container ID (a fake implements the same in the simulation). */
export interface SessionEngine {
  listManaged(node: string): Promise<ManagedContainer[]>;
  ensureImage(image: string, onProgress: (p: PullProgress) => void): Promise<string>;
  create(spec: Dockerode.ContainerCreateOptions): Promise<string>;
  imageFacts(imageId: string, node: string): Promise<ImageFacts>;
  start(id: string): Promise<void>;
  wait(id: string): Promise<number>;
  stop(id: string, timeoutSeconds: number): Promise<void>;
  remove(id: string): Promise<void>;
  exists(id: string): Promise<boolean>;
  publishedState(id: string): Promise<PublishedState>;
}

/** The only code that talks to Docker. Thin: each method is one or two engine calls. */
export class DockerEngine implements SessionEngine {
  private docker: Dockerode | null = null;
  private facts = new Map<string, ImageFacts>();

  constructor(private readonly socketPath: string) {}

  private async client(): Promise<Dockerode> {
    if (!this.docker) {
      const { default: Docker } = await import("dockerode");
      this.docker = new Docker({ socketPath: this.socketPath });
    }
    return this.docker;
  }

  /** Runs an engine call, turning "engine unreachable" into one clear line. */
  async call<T>(fn: (docker: Dockerode) => Promise<T>): Promise<T> {
    const docker = await this.client();
    try {
      return await fn(docker);
    } catch (err) {
      if (isDockerDown(err)) throw new UnavailableError("Docker is not running on this node: start it with 'systemctl start docker'");
      throw err;
    }
  }

  private onContainer<T>(id: string, fn: (container: Dockerode.Container) => Promise<T>): Promise<T> {
    return this.call((d) => fn(d.getContainer(id)));
  }

  /** The session containers of one node (an engine may be shared, in tests or by a misconfiguration: never touch another's). */
  async listManaged(node: string): Promise<ManagedContainer[]> {
    const list = await this.call((d) => d.listContainers({ all: true, filters: { label: ["beaker.managed=true", `beaker.node=${node}`] } }));
    return list.map((c) => ({
      id: c.Id,
      sessionId: c.Labels["beaker.session"] ?? "",
      state: c.State,
      labels: c.Labels,
      image: c.Image,
      created: c.Created,
      ports: c.Ports.filter((p) => p.PublicPort).map((p) => `${p.IP === "::" ? "[::]" : p.IP}:${p.PublicPort}->${p.PrivatePort}/${p.Type}`),
      mounts: (c.Mounts ?? []).filter((m) => m.Type === "bind").map((m) => `${m.Source}:${m.Destination}${m.RW ? "" : ":ro"}`),
      exitCode: c.State === "exited" ? Number(/Exited \((\d+)\)/.exec(c.Status)?.[1] ?? 255) : null,
    }));
  }

  /** Containers carrying `label` (KEY=VALUE), running or not: each one's ID and whether it runs. */
  async listLabelled(label: string): Promise<Array<{ id: string; running: boolean }>> {
    const list = await this.call((d) => d.listContainers({ all: true, filters: { label: [label] } }));
    return list.map((c) => ({ id: c.Id, running: c.State === "running" }));
  }

  /** The image's ID, or null when it is not here. */
  async imageId(image: string): Promise<string | null> {
    return this.call(async (d) => {
      try {
        return (await d.getImage(image).inspect()).Id;
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
    });
  }

  /** Makes sure the image is here, pulling it when missing, and returns its ID. Failures name the image and the reason. */
  async ensureImage(image: string, onProgress: (p: PullProgress) => void): Promise<string> {
    const present = await this.imageId(image);
    if (present) return present;
    await this.pull(image, onProgress);
    const pulled = await this.imageId(image);
    if (!pulled) throw new SessionStartError(`cannot pull image ${image}: the engine does not show it after the pull`);
    return pulled;
  }

  private async pull(image: string, onProgress: (p: PullProgress) => void): Promise<void> {
    await this.call(async (d) => {
      let stream: NodeJS.ReadableStream;
      try {
        stream = await d.pull(image);
      } catch (err) {
        throw new SessionStartError(`cannot pull image ${image}: ${dockerMessage(err)}`);
      }
      await new Promise<void>((resolve, reject) => {
        d.modem.followProgress(
          stream,
          (err: Error | null) => (err ? reject(new SessionStartError(`cannot pull image ${image}: ${dockerMessage(err)}`)) : resolve()),
          (event: { status?: string; id?: string; progressDetail?: { current?: number; total?: number }; error?: string }) => {
            if (event.error) return;
            onProgress({ status: event.status ?? "", layer: event.id, current: event.progressDetail?.current, total: event.progressDetail?.total });
          },
        );
      });
    });
  }

  async create(spec: Dockerode.ContainerCreateOptions): Promise<string> {
    return this.call(async (d) => {
      try {
        return (await d.createContainer(spec)).id;
      } catch (err) {
        throw new SessionStartError(`cannot create the session's container: ${dockerMessage(err)}`);
      }
    });
  }

  start(id: string): Promise<void> {
    return this.onContainer(id, async (c) => void (await c.start()));
  }

  /** Waits for the container to stop running and returns its exit code. */
  wait(id: string): Promise<number> {
    return this.onContainer(id, async (c) => ((await c.wait()) as { StatusCode: number }).StatusCode);
  }

  /** SIGTERM, then SIGKILL after the timeout; a container already stopped or gone is not an error. */
  stop(id: string, timeoutSeconds: number): Promise<void> {
    return this.onContainer(id, async (c) => {
      try {
        await c.stop({ t: timeoutSeconds });
      } catch (err) {
        if (dockerStatus(err) !== 304 && !isNotFound(err)) throw err;
      }
    });
  }

  /** Removes the container and its anonymous volumes, running or not; one already gone is not an error. */
  remove(id: string): Promise<void> {
    return this.onContainer(id, async (c) => {
      try {
        await c.remove({ force: true, v: true });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    });
  }

  /** The container's state, or null when it is gone. */
  private state(id: string): Promise<Dockerode.ContainerInspectInfo["State"] | null> {
    return this.onContainer(id, async (c) => {
      try {
        return (await c.inspect()).State;
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
    });
  }

  async exists(id: string): Promise<boolean> {
    return (await this.state(id)) !== null;
  }

  /** Whether the container runs now; false when it is gone. */
  async isRunning(id: string): Promise<boolean> {
    return (await this.state(id))?.Running ?? false;
  }

  /** What a started container got of the ports it asked for (and whether it still runs, which changes the answer). */
  publishedState(id: string): Promise<PublishedState> {
    return this.onContainer(id, async (c) => {
      const inspect = await c.inspect();
      return { running: inspect.State.Running, ports: inspect.NetworkSettings.Ports, networks: inspect.NetworkSettings.Networks, mode: inspect.HostConfig.NetworkMode };
    });
  }

  kill(id: string, signal: string): Promise<void> {
    return this.onContainer(id, async (c) => void (await c.kill({ signal })));
  }

  resize(id: string, cols: number, rows: number): Promise<void> {
    return this.onContainer(id, async (c) => void (await c.resize({ w: cols, h: rows })));
  }

  pathExists(id: string, path: string): Promise<boolean> {
    return this.onContainer(id, async (c) => {
      try {
        await c.infoArchive({ path });
        return true;
      } catch {
        return false;
      }
    });
  }

  private async readFile(container: Dockerode.Container, path: string): Promise<string | null> {
    try {
      const stream = (await container.getArchive({ path })) as unknown as NodeJS.ReadableStream;
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
      const body = readFirstFile(new Uint8Array(Buffer.concat(chunks)));
      return body ? new TextDecoder().decode(body) : null;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /**
   * What a session needs to know of an image's filesystem, read from a container of the image made for nothing else
   * (no mounts, no network, never started), so no user's mount can stand in for the image's files. Kept by image ID
   * (an ID names fixed content, so this never goes stale): one create and remove per image, not per session.
   */
  async imageFacts(imageId: string, node: string): Promise<ImageFacts> {
    const cached = this.facts.get(imageId);
    if (cached) return cached;
    const id = await this.create({
      Image: imageId,
      Cmd: ["/bin/sh"],
      Entrypoint: [],
      NetworkDisabled: true,
      Labels: { "beaker.facts": "true", "beaker.node": node },
      HostConfig: { NetworkMode: "none" },
    });
    try {
      const facts = await this.onContainer(id, async (c) => {
        const [passwd, group, hasEtc, hasBash, hasShell] = await Promise.all([
          this.readFile(c, "/etc/passwd"),
          this.readFile(c, "/etc/group"),
          this.pathExists(id, "/etc"),
          this.pathExists(id, "/bin/bash"),
          this.pathExists(id, "/bin/sh"),
        ]);
        return { passwd, group, hasEtc, hasBash, hasShell };
      });
      if (this.facts.size >= 64) this.facts.delete(this.facts.keys().next().value!);
      this.facts.set(imageId, facts);
      return facts;
    } finally {
      await this.remove(id).catch(() => {});
    }
  }

  /** Removes image-facts containers a crashed executor left behind. */
  async removeLeftoverFacts(node: string): Promise<void> {
    const list = await this.call((d) => d.listContainers({ all: true, filters: { label: ["beaker.facts=true", `beaker.node=${node}`] } }));
    for (const c of list) await this.remove(c.Id).catch(() => {});
  }

  /**
   * Makes sure the sessions' network exists: a bridge with traffic between its containers off, so one session cannot
   * reach another's ports; returns its bridge interface. "none" and Docker's own networks are used as they are (null).
   */
  async ensureSessionNetwork(name: string): Promise<string | null> {
    if (!isUserDefinedNetwork(name)) return null;
    return this.call(async (d) => {
      // Its bridge interface on this host: Docker's name for it, unless the network names its own.
      const bridge = (n: Dockerode.NetworkInspectInfo) => n.Options?.["com.docker.network.bridge.name"] ?? `br-${n.Id.slice(0, 12)}`;
      try {
        return bridge(await d.getNetwork(name).inspect());
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      try {
        await d.createNetwork({ Name: name, Driver: "bridge", CheckDuplicate: true, Options: { "com.docker.network.bridge.enable_icc": "false" }, Labels: { "beaker.managed": "true" } });
      } catch (createErr) {
        if (dockerStatus(createErr) !== 409) throw new SessionStartError(`cannot make the sessions' network ${name}: ${dockerMessage(createErr)}`);
      }
      return bridge(await d.getNetwork(name).inspect());
    });
  }

  /** The container's own environment (the image's and the session's `--env`), which every exec inherits. */
  configEnv(id: string): Promise<string[]> {
    return this.onContainer(id, async (c) => (await c.inspect()).Config.Env ?? []);
  }

  /** Starts a process in a running container, as the container's user; its stream is hijacked like attach. */
  async exec(id: string, command: string[], options: ExecOptions): Promise<{ execId: string; stream: Duplex }> {
    const { tty, env, size, workdir } = options;
    const consoleSize = size ? { ConsoleSize: size } : {};
    return this.onContainer(id, async (c) => {
      const exec = await c.exec({ Cmd: command, AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: tty, Env: env, ...consoleSize, ...(workdir ? { WorkingDir: workdir } : {}) });
      const stream = (await exec.start({ hijack: true, stdin: true, Tty: tty, ...consoleSize })) as unknown as Duplex;
      return { execId: exec.id, stream };
    });
  }

  execResize(execId: string, cols: number, rows: number): Promise<void> {
    return this.call(async (d) => void (await d.getExec(execId).resize({ w: cols, h: rows })));
  }

  /** An exec's state: whether it runs, its exit code, and its PID on this host. */
  async execState(execId: string): Promise<{ running: boolean; exitCode: number | null; pid: number | null }> {
    const info = await this.call((d) => d.getExec(execId).inspect());
    return { running: info.Running, exitCode: info.ExitCode ?? null, pid: info.Pid || null };
  }

  attach(id: string): Promise<Duplex> {
    return this.onContainer(id, async (c) => (await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Duplex);
  }

  demux(stream: Duplex, stdout: (b: Buffer) => void, stderr: (b: Buffer) => void): void {
    this.docker!.modem.demuxStream(stream, { write: (b: Buffer) => (stdout(b), true) } as never, { write: (b: Buffer) => (stderr(b), true) } as never);
  }
}
