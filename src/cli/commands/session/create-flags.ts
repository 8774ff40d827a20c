import { jsonOption, type FlagsOf, type OptionSpec } from "../../command.ts";

const slurmOptions = [
  { flags: "--partition <name>", description: "Slurm: the partition to ask (default: the node's slurm.partition)", kind: "string" },
  { flags: "--account <name>", description: "Slurm: the account to charge", kind: "string" },
  { flags: "--qos <name>", description: "Slurm: the quality of service", kind: "string" },
  { flags: "--slurm-job <id>", description: "Slurm: run in this job of yours (on its node, inside the allocation)", kind: "string" },
  { flags: "--slurm", description: "Slurm: let Slurm pick the node (salloc, then srun onto it); default where no executor runs and the site's scheduler is slurm", kind: "boolean" },
] as const satisfies readonly OptionSpec[];

/** `session create`'s flags: one list for the command, the request it builds, and the create it runs elsewhere. */
export const createOptions = [
    { flags: "--gpus <n>", description: "GPUs to claim (default 1 on a node with GPUs, 0 without)", kind: "number" },
    { flags: "--image <image>", description: "Container image (default: your default_image, else the node's)", kind: "string" },
    { flags: "--name <name>", description: "A name for the session, unique among yours on this node", kind: "string" },
    { flags: "--cpus <n>", description: "CPU limit", kind: "string" },
    { flags: "--memory <size>", description: "Memory limit, like 64g", kind: "string" },
    { flags: "--shared-memory <size>", description: "/dev/shm size (default half the memory limit, or 8g)", kind: "string" },
    { flags: "--port <port>", description: "Publish a container port (repeatable)", kind: "list" },
    { flags: "--env <K=V>", description: "Set an environment variable (repeatable)", kind: "list" },
    { flags: "--mount <SRC:DST[:ro]>", description: "Bind-mount a path you can read (repeatable)", kind: "list" },
    { flags: "--workdir <dir>", description: "Working directory inside (default: here if inside your home, else home)", kind: "string" },
    { flags: "--time <duration>", description: 'Stop it after this long: "4h", "90m", or as Slurm writes it, "60" (minutes), "4:00:00"; under Slurm also the job\'s time limit', kind: "string" },
    { flags: "-d, --detach", description: "Start it without attaching", kind: "boolean" },
    { flags: "--no-wait", description: "Fail (exit 6) instead of waiting in the queue", kind: "boolean" },
    { flags: "--cluster <name>", description: "Start it on the node of this cluster with room (default: your default_cluster, where no executor runs)", kind: "string" },
    { flags: "--node <host>", description: "Start it on this node (reached with ssh)", kind: "string" },
    { flags: "--gpu-type <type>", description: "With --cluster: GPUs whose name contains this, like H100", kind: "string" },
    ...slurmOptions,
    jsonOption,
] as const satisfies readonly OptionSpec[];

export type CreateFlags = FlagsOf<typeof createOptions>;
