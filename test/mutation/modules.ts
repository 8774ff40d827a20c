/**
 * The modules mutation testing covers (scripts/mutation.ts): the code that decides security and correctness, each with
 * the unit tests that pin it. A mutant runs only these tests, so the list must name every test file that could kill
 * it; a module missing here is not mutation-tested at all.
 */
export interface MutationModule {
  file: string;
  tests: string[];
  /** Environment for the test run (the claims simulation runs fewer seeds per mutant than scripts/test does). */
  env?: Record<string, string>;
}

export const modules: MutationModule[] = [
  { file: "src/executor/claims/claims.ts", tests: ["test/unit/claims.test.ts", "test/unit/user-caps.test.ts", "test/unit/claims-edges.test.ts", "test/unit/claims-sim.test.ts"], env: { BEAKER_SIM_SEEDS: "40" } },
  { file: "src/executor/validate.ts", tests: ["test/unit/executor-security.test.ts", "test/unit/session-request.test.ts", "test/unit/slurm-pairing.test.ts", "test/unit/executor-validate.test.ts", "test/unit/executor-validate-terminal.test.ts"] },
  { file: "src/executor/sessions/mounts.ts", tests: ["test/unit/mount-policy.test.ts", "test/unit/executor-security.test.ts", "test/unit/executor-plan.test.ts", "test/unit/mounts-resolve.test.ts"] },
  { file: "src/executor/sessions/mountpoints.ts", tests: ["test/unit/mount-policy.test.ts", "test/unit/mountpoints-plan.test.ts", "test/unit/mountpoints-io.test.ts"] },
  { file: "src/executor/proof.ts", tests: ["test/unit/proof.test.ts", "test/unit/proof-edges.test.ts", "test/unit/executor-security.test.ts", "test/unit/executor-plan.test.ts"] },
  { file: "src/executor/claims/tickets.ts", tests: ["test/unit/tickets.test.ts", "test/unit/tickets-key.test.ts"] },
  { file: "src/executor/sessions/lookup.ts", tests: ["test/unit/executor-plan.test.ts", "test/unit/lookup-ref.test.ts"] },
  { file: "src/executor/terminals/helper-env.ts", tests: ["test/unit/helper-env.test.ts", "test/unit/helper-env-plan.test.ts"] },
  { file: "src/executor/gpu/idle.ts", tests: ["test/unit/gpu-idle.test.ts", "test/unit/idle-policy.test.ts"] },
  { file: "src/gpu/usable.ts", tests: ["test/unit/claims.test.ts", "test/unit/gpu-discover.test.ts", "test/unit/gpu-health.test.ts", "test/unit/gpu-usable.test.ts"] },
  { file: "src/server/tokens.ts", tests: ["test/unit/server.test.ts", "test/unit/server-auth.test.ts", "test/unit/tokens-parse.test.ts"] },
  { file: "src/server/validate.ts", tests: ["test/unit/server.test.ts", "test/unit/server-validate.test.ts"] },
  { file: "src/server/store.ts", tests: ["test/unit/server.test.ts", "test/unit/server-auth.test.ts", "test/unit/server-store.test.ts", "test/unit/server-store-nodes.test.ts"] },
  { file: "src/git/store.ts", tests: ["test/unit/git-credential-match.test.ts", "test/unit/git-setup.test.ts", "test/unit/git-store-file.test.ts"] },
  { file: "src/git/protocol.ts", tests: ["test/unit/git-credential-match.test.ts", "test/unit/update.test.ts", "test/unit/git-protocol.test.ts"] },
  { file: "src/ssh/login.ts", tests: ["test/unit/ssh.test.ts", "test/unit/ssh-login.test.ts", "test/unit/helper-env.test.ts", "test/unit/ssh-session-env.test.ts"] },
  { file: "src/ssh/host.ts", tests: ["test/unit/ssh.test.ts", "test/unit/helper-env.test.ts", "test/unit/ssh-session-env.test.ts"] },
  { file: "src/remote/placement.ts", tests: ["test/unit/remote.test.ts", "test/unit/placement-edges.test.ts"] },
  { file: "src/slurm/job.ts", tests: ["test/unit/slurm.test.ts", "test/unit/slurm-pairing.test.ts", "test/unit/slurm-parse.test.ts"] },
  { file: "src/slurm/allocation.ts", tests: ["test/unit/slurm.test.ts", "test/unit/slurm-pairing.test.ts", "test/unit/slurm-salloc.test.ts"] },
  { file: "src/update/manifest.ts", tests: ["test/unit/update.test.ts", "test/unit/update-verify.test.ts", "test/unit/manifest-shape.test.ts"] },
  { file: "src/update/download.ts", tests: ["test/unit/update-verify.test.ts", "test/unit/download-failures.test.ts"] },
  { file: "src/update/semver.ts", tests: ["test/unit/update.test.ts", "test/unit/semver.test.ts"] },
];
