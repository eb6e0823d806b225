/**
 * Deterministic simulation of the Raft core (replication/raft/core) with 3 and 5 voters (plus up
 * to 2 nodes that may join): fast-check picks a sequence of proposals, ticks, network faults
 * (drops, duplicates, delays that reorder, symmetric and one-way partitions), crashes (some in the
 * middle of a write, leaving a torn tail), restarts from the persisted state, leader transfers and
 * single-server membership changes (add learner, promote, remove), and log compaction on every
 * node, so that lagging followers and new members catch up from a snapshot (InstallSnapshot).
 *
 * Checked at every tick (see support/raft-sim.ts): Election Safety, Log Matching, Leader
 * Completeness, committed entries never lost or changed, commit index monotonic on a node that
 * stays up, applied entries a prefix of the committed sequence. Then liveness: once the faults stop
 * a leader is elected and a new proposal is applied by every voter within a bounded number of ticks.
 *
 * Replay a failure exactly: SEED=<seed> npx vitest run property-tests/raft-sim.prop.test.ts
 * (the failure prints the full command: add FC_PATH=<path> and -t "<n> voters" to replay only the
 * shrunk counterexample; RAFT_SIM_RUNS=<n> sets the number of runs of each property, e.g.
 * RAFT_SIM_RUNS=5000 RAFT_SIM_SHRINK=0 for a long soak).
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { NO_FAULTS, runSimulation, type NetFaults, type SimAction, type SimOptions } from './support/raft-sim.js';

const FILE = 'property-tests/raft-sim.prop.test.ts';
const seed = Number(process.env.SEED ?? Date.now() % 2 ** 31);
const runs_override = process.env.RAFT_SIM_RUNS === undefined ? undefined : Number(process.env.RAFT_SIM_RUNS);
const path = process.env.FC_PATH;
/** RAFT_SIM_SHRINK=0 reports the first failure unshrunk (faster for soaks); otherwise it is shrunk for up to a minute. */
const shrink = process.env.RAFT_SIM_SHRINK !== '0';

const ELECTION_TIMEOUT_TICKS = 10;
const HEARTBEAT_INTERVAL_TICKS = 2;
/** After faults stop: time for a few election rounds, then one commit (the sim adds time to catch up long logs). */
const LIVENESS_MAX_TICKS = 30 * ELECTION_TIMEOUT_TICKS;
const SHRINK_TIME_LIMIT_MS = 60_000;
/** A passing run takes seconds; a failing one may also spend SHRINK_TIME_LIMIT_MS shrinking. */
const TEST_TIMEOUT_MS = 600_000;

const faults: fc.Arbitrary<NetFaults> = fc.oneof(
  { weight: 1, arbitrary: fc.constant(NO_FAULTS) },
  {
    weight: 3,
    arbitrary: fc.record({
      drop_pct: fc.integer({ min: 0, max: 30 }),
      dup_pct: fc.integer({ min: 0, max: 20 }),
      delay_max_ticks: fc.integer({ min: 1, max: 6 }),
      churn_pct: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 15 })),
      restart_pct: fc.integer({ min: 2, max: 30 }),
    }),
  },
);

function actionArb(nodes: number): fc.Arbitrary<SimAction> {
  const node = fc.nat({ max: 16 });
  return fc.oneof(
    { weight: 10, arbitrary: fc.record({ t: fc.constant('run' as const), ticks: fc.integer({ min: 1, max: 40 }) }) },
    {
      weight: 8,
      arbitrary: fc.record({
        t: fc.constant('propose' as const),
        count: fc.integer({ min: 1, max: 8 }),
        size_bytes: fc.integer({ min: 1, max: 100 }),
        to_leader: fc.boolean(),
        node,
      }),
    },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('partition' as const), mask: fc.integer({ min: 1, max: 2 ** nodes - 2 }), one_way: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('isolate_leader' as const), one_way: fc.boolean() }) },
    { weight: 2, arbitrary: fc.constant({ t: 'heal' as const }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('net' as const), faults }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('diverge' as const), count: fc.integer({ min: 1, max: 8 }) }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('crash' as const), node, mid_write: fc.boolean(), torn: fc.double({ min: 0, max: 1, noNaN: true }) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('crash_leader' as const), mid_write: fc.boolean(), torn: fc.double({ min: 0, max: 1, noNaN: true }) }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('restart' as const), node }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('transfer' as const), node }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('compact' as const), keep: fc.integer({ min: 0, max: 6 }) }) },
    {
      weight: 2,
      arbitrary: fc.record({ t: fc.constant('conf' as const), type: fc.constantFrom('add_learner' as const, 'add_voter' as const, 'remove_node' as const), node }),
    },
  );
}

interface Scenario {
  readonly opts: SimOptions;
  readonly actions: SimAction[];
}

function scenarioArb(voters: number): fc.Arbitrary<Scenario> {
  const extra_nodes = 2;
  return fc.record({
    opts: fc.record({
      voters: fc.constant(voters),
      extra_nodes: fc.constant(extra_nodes),
      seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      // Mostly the production setting; sometimes plain Raft, to keep the basic paths honest.
      pre_vote: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.boolean() }),
      check_quorum: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.boolean() }),
      election_timeout_ticks: fc.constant(ELECTION_TIMEOUT_TICKS),
      heartbeat_interval_ticks: fc.constant(HEARTBEAT_INTERVAL_TICKS),
      append_entries_max_count: fc.integer({ min: 1, max: 4 }),
      inflight_appends_max: fc.integer({ min: 1, max: 4 }),
    }),
    actions: fc.array(actionArb(voters + extra_nodes), { minLength: 20, maxLength: 200, size: 'max' }),
  });
}

const totals = { runs: 0, ticks: 0, commits: 0, elections: 0, crashes: 0, truncations: 0, conf_changes: 0, leader_removals: 0, compactions: 0, snapshots_installed: 0, settle_ticks_max: 0 };

function check(voters: number, num_runs: number, seed_offset: number): void {
  const run_seed = seed + seed_offset;
  const prop = fc.property(scenarioArb(voters), (s) => {
    const sim = runSimulation(s.opts, s.actions, LIVENESS_MAX_TICKS);
    totals.settle_ticks_max = Math.max(totals.settle_ticks_max, sim.settle_ticks);
    totals.runs++;
    totals.ticks += sim.stats.ticks;
    totals.commits += sim.committed.length;
    totals.elections += sim.stats.elections;
    totals.crashes += sim.stats.crashes;
    totals.truncations += sim.stats.truncations;
    totals.conf_changes += sim.stats.conf_changes;
    totals.leader_removals += sim.stats.leader_removals;
    totals.compactions += sim.stats.compactions;
    totals.snapshots_installed += sim.stats.snapshots_installed;
  });
  // Find a failure without shrinking, then shrink it under a time limit: a failing CI run reports
  // within minutes, and a passing one is never cut short.
  const base: fc.Parameters<[Scenario]> = { seed: run_seed, numRuns: num_runs, ...(path === undefined ? {} : { path }) };
  let report = fc.check(prop, { ...base, endOnFailure: true });
  if (!report.failed) return;
  if (shrink && report.counterexamplePath !== null) {
    const shrunk = fc.check(prop, { ...base, path: report.counterexamplePath, interruptAfterTimeLimit: SHRINK_TIME_LIMIT_MS });
    if (shrunk.failed) report = shrunk;
  }
  const replay = `Replay with: SEED=${seed} FC_PATH=${report.counterexamplePath ?? ''} npx vitest run ${FILE} -t "${voters} voters"`;
  const cause = report.errorInstance instanceof Error ? report.errorInstance.message : String(report.errorInstance);
  throw new Error(`${replay}\n(fast-check seed ${run_seed}, ${report.numRuns} runs, ${report.numShrinks} shrinks)\ncounterexample: ${JSON.stringify(report.counterexample)}\n${cause}`);
}

console.info(`[${FILE}] seed ${seed} (replay: SEED=${seed} npx vitest run ${FILE})`);

describe(`raft simulation (SEED=${seed})`, () => {
  test('3 voters: safety under faults, then liveness', () => {
    check(3, runs_override ?? 600, 0);
  }, TEST_TIMEOUT_MS);

  test('5 voters: safety under faults, then liveness', () => {
    check(5, runs_override ?? 400, 1);
  }, TEST_TIMEOUT_MS);

  test('the simulations did real work', () => {
    console.info(`[${FILE}] ${JSON.stringify(totals)}`);
    if (totals.runs === 0) return; // the properties above were filtered out
    expect(totals.commits / totals.runs).toBeGreaterThan(3);
    expect(totals.elections).toBeGreaterThanOrEqual(totals.runs);
    expect(totals.crashes).toBeGreaterThan(0);
    // Membership changes, the leader removing itself among them (thesis §4.2.2), are in the mix.
    expect(totals.conf_changes).toBeGreaterThan(0);
    expect(totals.leader_removals).toBeGreaterThan(0);
    // Logs are compacted, and followers (or new members) behind a compacted leader install snapshots.
    expect(totals.compactions).toBeGreaterThan(0);
    expect(totals.snapshots_installed).toBeGreaterThan(0);
  });
});
