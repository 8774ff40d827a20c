/** The edges of placement: ties go by name, best fit and shortest queue win, and every reason and description's words. */
import { describe, expect, test } from "bun:test";
import { describePlacement, gpuMatches, pickNode, type PlacementNode } from "../../src/remote/placement.ts";

const node = (hostname: string, free: number, total: number, over: Partial<PlacementNode> = {}, name: string | null = "NVIDIA H100"): PlacementNode => ({
  hostname,
  status: "online",
  gpus: Array.from({ length: total }, (_, i) => ({ name, healthy: true, free: i < free })),
  queued: 0,
  ...over,
});
const req = (gpus: number, gpuType: string | null = null) => ({ cluster: "c", gpus, gpuType });

test("a GPU without a name matches no type, and any when none is asked", () => {
  expect(gpuMatches(null, "H100")).toBe(false);
  expect(gpuMatches(null, null)).toBe(true);
});

describe("pickNode", () => {
  test("equal nodes: the first by name, whatever the order they come in", () => {
    const nodes = [node("gpu-c", 2, 2), node("gpu-a", 2, 2), node("gpu-b", 2, 2)];
    expect(pickNode(nodes, req(1))).toMatchObject({ kind: "now", node: "gpu-a" });
    expect(pickNode([...nodes].reverse(), req(1))).toMatchObject({ kind: "now", node: "gpu-a" });
    const busy = nodes.map((n) => ({ ...n, queued: 1 }));
    expect(pickNode(busy, req(1))).toMatchObject({ kind: "queue", node: "gpu-a" });
    expect(pickNode([...busy].reverse(), req(1))).toMatchObject({ kind: "queue", node: "gpu-a" });
  });
  test("now: the fewest free GPUs that fit", () => {
    expect(pickNode([node("a", 4, 4), node("b", 2, 4), node("c", 1, 4)], req(2))).toMatchObject({ kind: "now", node: "b", free: 2 });
  });
  test("queued: the shortest queue, then the most free GPUs", () => {
    const nodes = [node("a", 0, 4, { queued: 3 }), node("b", 1, 4, { queued: 1 }), node("c", 3, 4, { queued: 1 }), node("d", 4, 4, { queued: 2 })];
    expect(pickNode(nodes, req(4))).toMatchObject({ kind: "queue", node: "c" });
  });
  test("a session without GPUs and without a type goes to a node without GPUs", () => {
    expect(pickNode([node("cpu-only", 0, 0)], req(0))).toMatchObject({ kind: "now", node: "cpu-only", free: 0, total: 0 });
  });
  test.each<[string, PlacementNode[], ReturnType<typeof req>, string]>([
    ["no node online", [node("a", 1, 1, { status: "offline" }), node("b", 1, 1, { status: "cordoned" })], req(1), "cluster c has no node online (a: offline, b: cordoned)"],
    ["no node of the type", [node("a", 1, 1, {}, "L4"), node("b", 1, 2, {}, null), node("c", 1, 1, {}, "A100"), node("d", 1, 1, {}, "L4")], req(1, "H100"), "no online node of c has H100 GPUs (it has: A100, L4)"],
    ["no GPU at all", [node("a", 0, 0)], req(1, "H100"), "no online node of c has H100 GPUs"],
    ["none big enough, of a type", [node("a", 4, 4), node("b", 2, 2)], req(8, "h100"), "no online node of c has 8 h100 GPUs (the most is 4)"],
    ["none big enough", [node("a", 4, 4)], req(8), "no online node of c has 8 GPUs (the most is 4)"],
  ])("impossible: %s", (_, nodes, request, reason) => {
    expect(pickNode(nodes, request)).toEqual({ kind: "impossible", reason });
  });
});

test.each([
  [0, "no node of c can start it now; queueing on a (1 of 4 GPUs free)"],
  [1, "no node of c can start it now; queueing on a (1 of 4 GPUs free, 1 request ahead)"],
  [2, "no node of c can start it now; queueing on a (1 of 4 GPUs free, 2 requests ahead)"],
])("describePlacement: %p requests ahead", (queued, text) => {
  expect(describePlacement({ kind: "queue", node: "a", free: 1, total: 4, queued }, req(2))).toBe(text);
});
