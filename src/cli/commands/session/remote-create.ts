/**
 * `session create` for a cluster: the server's live view picks the node, and the node's own `beaker session create`
 * runs there over ssh with the same flags; `--port` forwards come to localhost while attached.
 */
import { randomBytes } from "node:crypto";
import { userInfo } from "node:os";
import { ConflictError, UnavailableError, UsageError } from "../../../errors.ts";
import { forwardWhenRunning } from "../../../remote/forward.ts";
import { runBeakerOnNode, sshLoginName } from "../../../remote/node.ts";
import { describePlacement, pickNode, type PlacementRequest } from "../../../remote/placement.ts";
import { withSshDir } from "../../../remote/ssh.ts";
import type { Factory } from "../../factory.ts";
import type { CreateFlags } from "./create-flags.ts";
import { hasTty, remoteContext } from "../../remote.ts";

/** The node's `beaker session create` arguments for these flags. Pure. */
export function remoteCreateArgs(flags: CreateFlags, rest: string[], extra: { gpus: number | null; image: string | null; name: string | null }): string[] {
  const args = ["session", "create"];
  const value = (flag: string, v: unknown) => (v === undefined || v === null ? [] : [flag, String(v)]);
  const list = (flag: string, v: string[]) => v.flatMap((item) => [flag, item]);
  args.push(
    ...value("--gpus", extra.gpus),
    ...value("--image", extra.image),
    ...value("--name", extra.name),
    ...value("--cpus", flags.cpus),
    ...value("--memory", flags.memory),
    ...value("--shared-memory", flags.sharedMemory),
    ...list("--port", flags.port),
    ...list("--env", flags.env),
    ...list("--mount", flags.mount),
    ...value("--workdir", flags.workdir),
    ...value("--time", flags.time),
    ...(flags.detach ? ["--detach"] : []),
    ...(flags.wait ? [] : ["--no-wait"]),
    ...(flags.json ? ["--json"] : []),
  );
  return rest.length > 0 ? [...args, "--", ...rest] : args;
}

/** Picks the node from the server's live view; says where it goes. Exit 6 when it cannot go anywhere (or must not wait). */
export async function pickClusterNode(factory: Factory, cluster: string, flags: CreateFlags): Promise<{ node: string; gpus: number }> {
  const nodes = await (await factory.server()).placement(cluster);
  const gpus = flags.gpus ?? (nodes.some((n) => n.gpus.length > 0) ? 1 : 0);
  const request: PlacementRequest = { cluster, gpus, gpuType: flags.gpuType ?? null };
  const placement = pickNode(nodes, request);
  if (placement.kind === "impossible") {
    if (!nodes.some((n) => n.status === "online")) throw new UnavailableError(placement.reason);
    throw new ConflictError(placement.reason);
  }
  if (placement.kind === "queue" && !flags.wait) {
    const kind = request.gpuType ? `${request.gpuType} GPUs` : "GPUs";
    throw new ConflictError(`no node of ${cluster} has ${gpus} free ${kind} now (the most: ${placement.node}, ${placement.free} of ${placement.total}); without --no-wait it would queue there`);
  }
  factory.io.err.write(`${describePlacement(placement, request)}\n`);
  return { node: placement.node, gpus };
}

/** Runs the create on `node` over ssh; its exit code is the session's. */
export async function createOnNode(factory: Factory, flags: CreateFlags, rest: string[], target: { node: string; gpus: number | null; cluster: string | null }): Promise<number> {
  const { io } = factory;
  const ports = flags.port.map(Number);
  const forwarding = ports.length > 0 && !flags.detach;
  return withSshDir(async (dir) => {
    const ctx = remoteContext(factory, dir);
    // The forwards need the session's name before it exists, to ask the node whether it runs yet.
    const name = flags.name ?? (forwarding ? `${(await sshLoginName(ctx, target.node)) ?? userInfo().username}-${randomBytes(3).toString("hex")}` : null);
    const image = flags.image ?? factory.userConfig().read().default_image ?? null;
    const controlPath = `${dir}/c`;
    const list = target.cluster ? `beaker session list --cluster ${target.cluster}` : `ssh ${target.node} beaker session list`;
    const code = await runBeakerOnNode(ctx, {
      node: target.node,
      args: remoteCreateArgs(flags, rest, { gpus: target.gpus, image, name }),
      tty: !flags.detach && hasTty(factory),
      afterDrop: `a session created before it dropped keeps running (${list})`,
      ...(forwarding
        ? { controlPath, during: () => forwardWhenRunning(ctx, { node: target.node, controlPath, session: name!, ports, announce: ctx.say }) }
        : {}),
    });
    if (code === 0 && flags.detach && ports.length > 0 && !flags.json) {
      io.err.write(`its ports stay on ${target.node}; bring one here with: beaker session port-forward ${flags.name ?? "ID"} ${ports[0]}${target.cluster ? ` --cluster ${target.cluster}` : ` --node ${target.node}`}\n`);
    }
    return code;
  });
}

export function checkGpuType(flags: CreateFlags, remote: boolean): void {
  if (flags.gpuType === undefined) return;
  if (!remote) throw new UsageError("--gpu-type picks among a cluster's nodes: use it with --cluster (or your default_cluster)");
  if (flags.node !== undefined) throw new UsageError("--gpu-type picks the node; with --node the node is already chosen");
}
