/** How a process is started in a running container (`DockerEngine.exec`). */
export interface ExecOptions {
  tty: boolean;
  /** Laid over the container's own environment: "KEY=VALUE" sets, a bare "KEY" removes. */
  env: string[];
  /** Rows and columns to start a terminal at, or null. */
  size: [number, number] | null;
  /** Default: the container's working directory. */
  workdir?: string;
}
