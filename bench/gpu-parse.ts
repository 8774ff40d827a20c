#!/usr/bin/env bun
/**
 * Parsing an 8-GPU `nvidia-smi -q -x` (V100 x8, 227 KB): median and p95 over many runs after warm-up.
 * Target: under 5 ms. Peer in the same run: JSON.parse of the same GPUs serialised, for scale.
 *   node_modules/.bin/bun bench/gpu-parse.ts
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseNvidiaSmiXml } from "../src/gpu/parse-xml.ts";

const file = resolve(import.meta.dir, "../test/fixtures/nvidia-smi/datakit_tesla-v100s-pcie-32gb_x8_drv460.73_q_x.xml");
const text = readFileSync(file, "utf8");
const json = JSON.stringify(parseNvidiaSmiXml(text));

function measure(fn: () => unknown, runs: number): { median: number; p95: number } {
  for (let i = 0; i < 20; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(runs / 2)]!, p95: times[Math.floor(runs * 0.95)]! };
}

const xml = measure(() => parseNvidiaSmiXml(text), 200);
const peer = measure(() => JSON.parse(json), 200);
const first = (() => {
  const start = performance.now();
  parseNvidiaSmiXml(text.replace("V100S", "V100s"));
  return performance.now() - start;
})();
console.log(`parseNvidiaSmiXml (8 GPUs, ${(text.length / 1024).toFixed(0)} KiB): median ${xml.median.toFixed(2)} ms, p95 ${xml.p95.toFixed(2)} ms (target < 5 ms: ${xml.p95 < 5 ? "met" : "MISSED"})`);
console.log(`JSON.parse of the parsed result: median ${peer.median.toFixed(3)} ms; ratio ${(xml.median / peer.median).toFixed(0)}x`);
console.log(`after warm-up, a changed document: ${first.toFixed(2)} ms`);
