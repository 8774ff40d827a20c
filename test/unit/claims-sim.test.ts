/**
 * The deterministic simulation of the executor (test/sim): thousands of seeded runs of random workloads with faults,
 * each checking the claim invariants after every step. A failure prints its seed and event trace;
 * `BEAKER_SIM_SEED=N bun test test/unit/claims-sim.test.ts` replays one seed with its trace.
 */
import { afterAll, expect, test } from "bun:test";
import { removeDir, tempDir } from "../harness.ts";
import { runSeed } from "../sim/driver.ts";
import { simManager } from "../sim/manager.ts";

const replay = process.env.BEAKER_SIM_SEED;
const seeds = Number(process.env.BEAKER_SIM_SEEDS ?? 10_000);
const stateDir = tempDir("beaker-sim-");
afterAll(() => removeDir(stateDir));

test(replay ? `simulation: seed ${replay}` : `simulation: ${seeds} seeds, no invariant violated`, async () => {
  const list = replay ? [Number(replay)] : Array.from({ length: seeds }, (_, i) => i + 1);
  const failures: string[] = [];
  let sessions = 0;
  let crashes = 0;
  let returns = 0;
  let kept = 0;
  for (const seed of list) {
    const result = await runSeed(seed, simManager, { stateDir });
    sessions += result.stats.sessions;
    crashes += result.stats.crashes;
    returns += result.stats.returns;
    kept += result.stats.kept;
    if (replay) console.log(result.trace.join("\n"));
    if (result.violation) {
      failures.push(`seed ${seed}: ${result.violation}`);
      if (failures.length === 1) console.log(`first failing seed ${seed} (replay: BEAKER_SIM_SEED=${seed}):\n${result.trace.slice(-60).join("\n")}`);
    }
  }
  if (!replay) {
    console.log(`${list.length} seeds: ${sessions} sessions, ${crashes} executor restarts, ${returns} callers back with tickets, ${kept} places kept, ${failures.length} violations`);
    // The restarts with callers coming back did happen: the checks above had something to check.
    expect(kept).toBeGreaterThan(0);
  }
  expect(failures).toEqual([]);
  // CPU-bound: about a minute on an idle 2-core machine, five or more beside stress-ng and other suites; the bound
  // only stops a hang.
}, 900_000);

test("the caps invariant catches a rule that lets a user have one session more than the cap", async () => {
  // The machine is handed the cap plus one (as an off-by-one comparison would); the world checks the configured cap.
  const offByOne = (env: Parameters<typeof simManager>[0]) => simManager({ ...env, config: { ...env.config, maxSessionsPerUser: (env.config.maxSessionsPerUser ?? 16) + 1 } });
  const caught: number[] = [];
  for (let seed = 1; seed <= 200 && caught.length === 0; seed++) {
    const result = await runSeed(seed, offByOne, { stateDir });
    if (result.violation?.includes("over the cap")) caught.push(seed);
  }
  expect(caught.length).toBeGreaterThan(0);
}, 300_000);
