export interface MigDevice {
  /** `MIG-...`; only `nvidia-smi -L` prints it, so null when that call did not answer. */
  uuid: string | null;
  /** `1g.10gb`, `1c.3g.71gb`; only in `nvidia-smi -L`. */
  profile: string | null;
}

export interface GpuProcess {
  pid: number;
  name: string;
  usedMemoryMiB: number | null;
}

export interface Gpu {
  /** The driver's minor number (/dev/nvidiaN), or nvidia-smi's GPU index; never document order. */
  index: number | null;
  uuid: string | null;
  name: string | null;
  /** Normalised PCI address: lower case, domain of at least four digits (`0000:07:00.0`). */
  busId: string | null;
  memoryTotalMiB: number | null;
  /** Framebuffer memory in use now (`<fb_memory_usage><used>`); null when not reported. */
  memoryUsedMiB: number | null;
  /** `<utilization><gpu_util>`, percent of the last sample period the GPU was busy; null when not reported (MIG mode). */
  utilization: number | null;
  migMode: "enabled" | "disabled" | null;
  migDevices: MigDevice[];
  processes: GpuProcess[];
  healthy: boolean;
  error: string | null;
}

/** What discovery learned about a node: its GPUs, or why it could not tell. */
export interface Inventory {
  gpus: Gpu[];
  driverVersion: string | null;
  cudaVersion: string | null;
  /** Which call the answer came from. */
  source: "xml" | "list" | "none";
  /** A node-level failure (driver not loaded, NVML mismatch, hang); gpus is then empty and nothing may be handed out. */
  error: string | null;
  /** Why the node has no GPUs when that is not an error (no nvidia-smi, no devices). */
  note: string | null;
}
