import { createReadStream } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { limits } from '../../engine/base/limits.js';
import { serverLimits } from '../rpc/limits.js';
import { RelaylogClient, type PartitionMembership, type TopicDescription } from '../../client/client.js';
import { collect, nonNegativeInt, parseAddress, parseConfigPairs, parseFormat, parseFrom, parseTime, positiveInt, UsageError } from './args.js';
import { consumeRecords, type ConsumeOptions } from './consume.js';
import { opsCommands } from './ops/commands.js';
import { produceLines, type ProduceOptions } from './produce.js';
import type { ServeOptions } from './serve.js';

/** The default listen address and the default --server of client commands (documented in docs/operations.md). */
export const DEFAULT_LISTEN = '127.0.0.1:7450';
export const DEFAULT_DATA_DIR = './data';

/** Runs `fn` with a client for `--server`, closing it afterwards. */
async function withClient<T>(address: string, fn: (c: RelaylogClient) => Promise<T>): Promise<T> {
  const c = new RelaylogClient(address);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

const print = (s: string) => process.stdout.write(`${s}\n`);

/** `topic describe` as text: the config on one line, then one row per partition. */
export function describeText(t: TopicDescription): string {
  // On a cluster: the replica set too (learners, being added, marked with +).
  const cluster = t.partitions.some((p) => (p.voters ?? []).length > 0);
  const rows = [['partition', 'log-start', 'high-watermark', 'log-end', 'ssd-bytes', 'memory-bytes', 'archive-bytes', 'leader', ...(cluster ? ['replicas'] : [])]];
  for (const p of t.partitions) {
    const replicas = [...(p.voters ?? []).map(String), ...(p.learners ?? []).map((id) => `+${id}`)].join(',');
    rows.push([p.partition, p.log_start_offset, p.high_watermark, p.log_end_offset, p.ssd_bytes, p.memory_bytes, p.archive_bytes, p.leader, ...(cluster ? [replicas] : [])].map(String));
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  const config = Object.entries(t.config).map(([k, v]) => `${k}=${v}`).join(' ');
  return [`topic ${t.name}: ${t.partitions.length} partition(s)`, `config: ${config}`, ...table].join('\n');
}

function topicCommands(cli: Command, server: () => Option): void {
  const topic = cli.command('topic').description('create, list, describe and delete topics');
  topic
    .command('create <name>')
    .description("create a topic (config keys are Kafka's: retention.ms, segment.bytes, flush.messages ...)")
    .option('--partitions <n>', 'number of partitions', positiveInt('--partitions'), 1)
    .option('--config <key=value>', 'topic config (repeatable)', collect, [])
    .addOption(server())
    .action(async (name: string, o: { server: string; partitions: number; config: string[] }) => {
      const config = parseConfigPairs(o.config);
      const t = await withClient(o.server, (c) => c.createTopic(name, { partitions: o.partitions, config }));
      print(`created topic ${t.name} with ${t.partitions.length} partition(s)`);
    });
  topic
    .command('list')
    .description('list topics: name and partition count, tab-separated')
    .addOption(server())
    .action(async (o: { server: string }) => {
      for (const t of await withClient(o.server, (c) => c.listTopics())) print(`${t.name}\t${t.partitions.length}`);
    });
  topic
    .command('describe <name>')
    .description("a topic's config and, per partition, offsets, bytes per tier and leader")
    .option('--json', 'print JSON')
    .addOption(server())
    .action(async (name: string, o: { server: string; json?: boolean }) => {
      const t = await withClient(o.server, (c) => c.describeTopic(name));
      print(o.json ? JSON.stringify(t, null, 2) : describeText(t));
    });
  topic
    .command('delete <name>')
    .description('delete a topic and all its data')
    .addOption(server())
    .action(async (name: string, o: { server: string }) => {
      await withClient(o.server, (c) => c.deleteTopic(name));
      print(`deleted topic ${name}`);
    });
}

/** `relaylog partition ...`: leadership and replicas of one partition of a cluster (docs/raft.md). */
function partitionCommands(cli: Command, server: () => Option): void {
  const partition = cli.command('partition').description("a cluster partition's leadership and replica set");
  const membershipText = (what: string, m: PartitionMembership) =>
    `${what}: ${m.leader_id !== 0 ? `leader node ${m.leader_id}${m.leader ? ` (${m.leader})` : ''}` : 'leader not yet elected'}, voters ${m.voters.join(',')}${m.learners.length > 0 ? `, learners ${m.learners.join(',')}` : ''}, term ${m.raft_term}`;
  const common = (cmd: Command) =>
    cmd
      .option('--timeout <ms>', 'give up after this long (default: the server\'s, 30 s)', positiveInt('--timeout'))
      .option('--json', 'print JSON')
      .addOption(server());
  type Opts = { server: string; timeout?: number; json?: boolean };
  const run = async (o: Opts, what: string, fn: (c: RelaylogClient) => Promise<PartitionMembership>) => {
    const m = await withClient(o.server, fn);
    print(o.json ? JSON.stringify(m, null, 2) : membershipText(what, m));
  };
  common(partition.command('transfer-leader <topic> <partition>').description('move the leadership of a partition to another replica (answers once it leads)'))
    .requiredOption('--to <node>', 'the node id (a voter of the partition) to lead', positiveInt('--to'))
    .action((topic: string, p: string, o: Opts & { to: number }) =>
      run(o, `${topic}/${p}`, (c) => c.transferLeader(topic, partitionArg(p), o.to, o.timeout ?? 0)),
    );
  common(partition.command('add-replica <topic> <partition> <node>').description('add a node of --peers as a replica: it copies the log as a learner, then votes once caught up'))
    .action((topic: string, p: string, node: string, o: Opts) => run(o, `${topic}/${p}`, (c) => c.addReplica(topic, partitionArg(p), nodeArg(node), o.timeout ?? 0)));
  common(partition.command('remove-replica <topic> <partition> <node>').description('remove a replica (the leader too: it hands leadership over first)'))
    .action((topic: string, p: string, node: string, o: Opts) => run(o, `${topic}/${p}`, (c) => c.removeReplica(topic, partitionArg(p), nodeArg(node), o.timeout ?? 0)));
}

/** `relaylog node drain N`: every leadership off node N. */
function nodeCommands(cli: Command, server: () => Option): void {
  const node = cli.command('node').description('cluster nodes');
  node
    .command('drain <node>')
    .description('move every partition leadership off a node (before maintenance); it stays a replica')
    .option('--timeout <ms>', 'per partition (default: the server\'s, 30 s)', positiveInt('--timeout'))
    .option('--json', 'print JSON')
    .addOption(server())
    .action(async (n: string, o: { server: string; timeout?: number; json?: boolean }) => {
      const id = nodeArg(n);
      const { drainNode } = await import('./drain.js');
      const moves = await withClient(o.server, (c) =>
        drainNode(c, id, o.timeout ?? 0, (m) => {
          if (!o.json) print(m.error === undefined ? `${m.topic}/${m.partition}: leader ${m.from} -> ${m.to}` : `${m.topic}/${m.partition}: still led by ${m.from}: ${m.error}`);
        }),
      );
      if (o.json) print(JSON.stringify(moves, null, 2));
      else print(`node ${id} led ${moves.length} partition(s); ${moves.filter((m) => m.error === undefined).length} moved`);
      const failed = moves.filter((m) => m.error !== undefined);
      if (failed.length > 0) throw new Error(`${failed.length} partition(s) still led by node ${id}; the last error: ${failed[failed.length - 1]!.error}`);
    });
}

const partitionArg = (v: string): number => nonNegativeInt('<partition>')(v);
const nodeArg = (v: string): number => positiveInt('<node>')(v);

/** The options every server process takes (`serve` and `relay`). */
function nodeOptions(cmd: Command, archive_help: string): Command {
  return cmd
    .option('--data <dir>', 'data directory', DEFAULT_DATA_DIR)
    .option('--listen <host:port>', 'address to listen on (port 0 picks a free one)', parseAddress, DEFAULT_LISTEN)
    .option('--archive <url>', `${archive_help}: webhdfs://host:port/path?user=NAME or file:///path`)
    .option('--archive-interval <ms>', 'upload eligible sealed segments this often (0: only on `relaylog archive`)', nonNegativeInt('--archive-interval'), 10_000)
    .option('--retention-interval <ms>', 'apply retention this often', positiveInt('--retention-interval'), 30_000)
    .option('--memory <bytes>', 'memory-tier budget for hot tails (0 disables)', nonNegativeInt('--memory'), limits.memory_tier_bytes)
    .option('--disk-free-floor <bytes>', 'appends fail with DISK_FULL while the data dir\'s file system has less free space than this (0: only a real ENOSPC stops them)', nonNegativeInt('--disk-free-floor'), limits.disk_free_floor_bytes)
    .option('--metrics <host:port>', 'serve Prometheus metrics over HTTP at http://HOST:PORT/metrics')
    .option('--kafka-listen <host:port>', 'also speak the Kafka wire protocol on HOST:PORT, for existing Kafka clients (docs/kafka.md)', parseAddress)
    .option('--kafka-advertised <host:port>', 'the address Kafka clients are told to connect to (default: the --kafka-listen address)', parseAddress)
    .option('--log-level <level>', 'pino log level on stderr: debug, info, warn, error', 'info');
}

function serveCommands(cli: Command): void {
  nodeOptions(cli.command('serve').description('run a log server: a single node, or with --node-id/--peers a node of a Raft cluster (Ctrl-C or SIGTERM stops it cleanly)'), 'archive tier')
    .option('--compaction-interval <ms>', 'compact topics with cleanup.policy=compact this often (0: only on `relaylog compact`)', nonNegativeInt('--compaction-interval'), 60_000)
    .option('--replay-pace-lag <ms>', 'while producers write, slow catch-up Subscribe replays whenever the event loop runs this much late (0: never; docs/operations.md, "Replay yields to appends")', nonNegativeInt('--replay-pace-lag'), serverLimits.replay_pace_lag_ms)
    // Cluster mode (docs/raft.md, "Wiring"): every partition replicated by Raft across the peers.
    .option('--node-id <n>', "this node's id in --peers (cluster mode)", positiveInt('--node-id'))
    .option('--peers <id=host:port,...>', 'run as a Raft cluster node: the address book of every node that may host replicas, this one included, e.g. 1=10.0.0.1:7450,2=10.0.0.2:7450,3=10.0.0.3:7450')
    .option('--replicas <id,...>', 'cluster mode: the replica set of topics created through this node (default: every node of --peers); change it per partition with `relaylog partition add-replica/remove-replica`')
    .option('--peer-dial <id=host:port,...>', 'cluster mode: connect to these peers here instead of at their --peers address (a proxy or NAT between nodes); clients are still sent to the --peers address')
    .option('--kafka-peers <id=host:port,...>', "cluster mode with --kafka-listen: each node's Kafka address, for Metadata (default: the node's --peers host with this node's Kafka port)")
    .option('--raft-tick-ms <ms>', 'cluster mode: one Raft tick (heartbeats every tick; elections after 10 to 20 ticks without a leader)', positiveInt('--raft-tick-ms'), 100)
    // Imported on use: client commands start faster without the engine (LMDB) loaded.
    .action(async (o: ServeOptions) => (await import('./serve.js')).serve(o));
  nodeOptions(
    cli
      .command('relay')
      .description('run a read-only relay replica: pulls committed batches from an upstream (a cluster node or another relay) and serves consumers and further relays')
      .requiredOption('--upstream <host:port,...>', 'upstreams in order of preference (failover across the list, failback to the first)')
      .option('--topics <regex>', 'relay only topics whose name matches'),
    "the relay's own archive tier",
  )
    .option('--failback <ms>', 'after a failover, try the first upstream again this often', positiveInt('--failback'), 30_000)
    .action(async (o: ServeOptions & { upstream: string; topics?: string; failback: number }) => {
      const upstreams = o.upstream.split(',').map((a) => parseAddress(a.trim()));
      let topics: RegExp | undefined;
      if (o.topics !== undefined) {
        try {
          topics = new RegExp(o.topics);
        } catch (err) {
          throw new UsageError(`--topics: ${(err as Error).message}`);
        }
      }
      await (await import('./serve.js')).serve({ ...o, relay: { upstreams, failback_ms: o.failback, ...(topics ? { topics } : {}) } });
    });
  cli
    .command('restore')
    .description("rebuild a node's catalog from the archive alone (into an empty data dir), optionally copying a recent range back to its SSD tier, then exit")
    .requiredOption('--archive <url>', 'archive to restore from')
    .option('--data <dir>', 'data directory', DEFAULT_DATA_DIR)
    .option('--ssd-from-offset <offset>', 'also copy the archived segments from the one holding OFFSET to the end back to local disk', nonNegativeInt('--ssd-from-offset'))
    .option('--ssd-from-time <time>', 'also copy the archived segments from the first record with timestamp >= TIME (ISO-8601 or epoch ms) to the end back to local disk', parseTime)
    .option('--topic <name>', 'with --ssd-from-*: only this topic')
    .action(async (o: { archive: string; data: string; ssdFromOffset?: number; ssdFromTime?: number; topic?: string }) => {
      if (o.ssdFromOffset !== undefined && o.ssdFromTime !== undefined) throw new UsageError('give --ssd-from-offset or --ssd-from-time, not both');
      const { LogStore } = await import('../../engine/log/log-store.js');
      const store = await LogStore.open({ dir: o.data, archive_url: o.archive, archive_interval_ms: 0, retention_check_interval_ms: 0 });
      try {
        if (o.topic !== undefined) store.topic(o.topic); // UNKNOWN_TOPIC if the archive has no such topic
        for (const t of store.listTopics()) {
          for (const p of store.partitions(t.name)) {
            let copied = '';
            if ((o.ssdFromOffset !== undefined || o.ssdFromTime !== undefined) && (o.topic === undefined || o.topic === t.name)) {
              const from = o.ssdFromOffset ?? (await p.offsetForTimestamp(o.ssdFromTime!)) ?? p.highWatermark;
              const n = await p.restoreLocal(from);
              copied = `, ${n} copied to local disk (offsets ${p.segmentInfo()[0]!.base_offset}..${p.highWatermark})`;
            }
            const s = p.stats();
            print(`${t.name}/${p.partition}: offsets ${s.log_start_offset}..${s.high_watermark}, ${s.archived_segment_count} archived segment(s)${copied}`);
          }
        }
      } finally {
        await store.close();
      }
    });
}

function compactCommands(cli: Command, server: () => Option): void {
  cli
    .command('compact')
    .description('compact topics with cleanup.policy=compact now (latest record per key): through a running server (--server), or offline on a data dir (--data)')
    .option('--data <dir>', 'offline: the data directory (refused while a server holds it)')
    .option('--topic <name>', 'only this topic')
    .option('--json', 'print JSON')
    .addOption(server())
    .action(async (o: { data?: string; topic?: string; server: string; json?: boolean }) => {
      let report: { partitions: number; segments_rewritten: number; segments_merged: number; records_removed: number; bytes_before: number; bytes_after: number };
      if (o.data !== undefined) {
        const { LogStore } = await import('../../engine/log/log-store.js');
        const store = await LogStore.open({ dir: o.data, archive_interval_ms: 0, retention_check_interval_ms: 0 });
        try {
          if (o.topic !== undefined && store.topic(o.topic).config.cleanup_policy !== 'compact') throw new UsageError(`topic ${o.topic} does not have cleanup.policy=compact`);
          const { Progress } = await import('./ops/progress.js');
          const work = store.listTopics().filter((t) => o.topic === undefined || t.name === o.topic).flatMap((t) => store.partitions(t.name)).reduce((n, p) => n + p.compactionWorkBytes, 0);
          const progress = new Progress('compacting', work, !o.json);
          try {
            report = await store.compact(o.topic, { on_progress: (n) => progress.add(n) });
          } finally {
            progress.stop();
          }
        } finally {
          await store.close();
        }
      } else {
        report = await withClient(o.server, (c) => c.compact(o.topic ?? ''));
      }
      print(
        o.json
          ? JSON.stringify(report, null, 2)
          : `compacted ${report.partitions} partition(s): ${report.segments_rewritten} segment(s) rewritten, ${report.segments_merged} merged into the one before, ${report.records_removed} record(s) removed, ${report.bytes_before} -> ${report.bytes_after} bytes`,
      );
    });
}

function archiveCommands(cli: Command, server: () => Option): void {
  cli
    .command('archive')
    .description('upload eligible sealed segments to the archive tier now, then apply retention: through a running server (--server), or offline on a data dir (--data with --archive)')
    .option('--data <dir>', 'offline: the data directory (refused while a server holds it)')
    .option('--archive <url>', 'offline: the archive location (webhdfs://host:port/path?user=NAME or file:///path)')
    .option('--topic <name>', 'only upload this topic (retention still runs for every topic)')
    .option('--json', 'print JSON')
    .addOption(server())
    .action(async (o: { data?: string; archive?: string; topic?: string; server: string; json?: boolean }) => {
      let report: { uploaded: number; deleted: number; failures: number; archive_url: string; last_error: string };
      if (o.data !== undefined) {
        if (o.archive === undefined) throw new UsageError('offline archiving needs --archive URL as well as --data DIR');
        const { LogStore } = await import('../../engine/log/log-store.js');
        const store = await LogStore.open({ dir: o.data, archive_url: o.archive, archive_interval_ms: 0 });
        try {
          const { Progress } = await import('./ops/progress.js');
          if (o.topic !== undefined) store.topic(o.topic); // UNKNOWN_TOPIC if there is none
          const work = store.listTopics().filter((t) => o.topic === undefined || t.name === o.topic).flatMap((t) => store.partitions(t.name)).reduce((n, p) => n + p.unarchivedBytes, 0);
          const progress = new Progress('archiving', work, !o.json);
          let r: Awaited<ReturnType<typeof store.archiveAndRetain>>;
          try {
            r = await store.archiveAndRetain((n) => progress.add(n), o.topic);
          } finally {
            progress.stop();
          }
          report = { ...r, archive_url: store.archive!.url, last_error: store.archive!.metrics.last_error };
        } finally {
          await store.close();
        }
      } else {
        if (o.archive !== undefined) throw new UsageError('--archive is for offline use with --data; a server uses its own --archive');
        report = await withClient(o.server, (c) => c.archive(o.topic ?? ''));
      }
      print(o.json ? JSON.stringify(report, null, 2) : `archive ${report.archive_url}: uploaded ${report.uploaded} segment(s), retention removed ${report.deleted}, ${report.failures} failure(s)${report.last_error ? `; last error: ${report.last_error}` : ''}`);
      if (report.failures > 0) process.exitCode = 1;
    });
}

function dataCommands(cli: Command, server: () => Option): void {
  cli
    .command('produce <topic>')
    .description('produce one record per line of stdin (or --file); lines are batched')
    .option('--partition <p>', 'partition', nonNegativeInt('--partition'), 0)
    .option('--key <key>', 'key for every record')
    .option('--key-separator <sep>', 'the text before the first SEP on a line is its key (as parse.key)')
    .option('--file <path>', 'read lines from a file instead of stdin')
    .addOption(new Option('--acks <acks>', 'leader or all (the same on a single node)').choices(['leader', 'all']).default('all'))
    .option('--linger-ms <ms>', 'wait this long for more lines before sending a batch', nonNegativeInt('--linger-ms'), 10)
    .option('--batch-bytes <n>', 'send a batch once it holds about this many bytes', positiveInt('--batch-bytes'), 1024 * 1024)
    .addOption(server())
    .action(async (topic: string, o: ProduceOptions & { server: string; file?: string }) => {
      if (o.key !== undefined && o.keySeparator !== undefined) throw new UsageError('give --key or --key-separator, not both');
      if (o.keySeparator === '') throw new UsageError('--key-separator must not be empty');
      const input = o.file ? createReadStream(o.file) : process.stdin;
      const n = await withClient(o.server, (c) => produceLines(c, topic, input, o));
      process.stderr.write(`produced ${n} record(s) to ${topic}/${o.partition}\n`);
    });
  cli
    .command('consume <topic>')
    .description('print records from an offset, a time, earliest/latest or a group, up to the end (or --follow)')
    .option('--partition <p>', 'partition', nonNegativeInt('--partition'), 0)
    .option('--from-offset <offset>', 'start at this offset', nonNegativeInt('--from-offset'))
    .option('--from-time <time>', 'start at the first record with timestamp >= TIME (ISO-8601 or epoch ms)', parseTime)
    .option('--from <where>', 'earliest or latest (the default is earliest)', parseFrom)
    .option('--group <group>', "start at the group's committed offset (earliest if none); commit the position reached on exit")
    .option('--max <n>', 'stop after N records', nonNegativeInt('--max'))
    .option('--follow', 'keep following the tail after reaching it')
    .option('--format <format>', 'value (one value per line) or json ({offset, timestamp, key, value} per line)', parseFormat, 'value')
    .addOption(server())
    .action(async (topic: string, o: ConsumeOptions & { server: string }) => {
      await withClient(o.server, (c) => consumeRecords(c, topic, o));
    });
}

/** The relaylog command line; parse with `main()` (or `program().parseAsync()` in tests). */
export function program(): Command {
  const cli = new Command('relaylog')
    .description('relaylog: a log server for distributing AI data (single node)')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`relaylog: ${str.replace(/^error: /, '').trim().split('\n')[0]}\n`) });
  const server = () => new Option('--server <host:port>', 'server address').argParser(parseAddress).default(DEFAULT_LISTEN);
  serveCommands(cli);
  topicCommands(cli, server);
  dataCommands(cli, server);
  archiveCommands(cli, server);
  compactCommands(cli, server);
  partitionCommands(cli, server);
  nodeCommands(cli, server);
  opsCommands(cli); // verify, inspect, dump, archive list (after archiveCommands: `list` is a subcommand of `archive`)
  return cli;
}

/**
 * Runs the CLI (bin/relaylog.js calls this with process.argv). Exit status: 0 ok; 1 when a command
 * fails (one line on stderr: `relaylog: <what went wrong>`); 2 for a usage mistake.
 */
export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed its one line (or the help) already.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    process.stderr.write(`relaylog: ${((err as Error)?.message ?? String(err)).split('\n')[0]}\n`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  }
}
