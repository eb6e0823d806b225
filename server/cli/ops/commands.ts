import { once } from 'node:events';
import type { Command } from 'commander';
import { nonNegativeInt, positiveInt, UsageError } from '../args.js';

/*
 * The offline ops commands: `verify`, `inspect`, `dump` and `archive list` (docs/operations.md).
 * Each takes the data-dir lock (refused, naming the holder's pid, while a server runs on the dir),
 * reads without changing anything, prints text or with --json a machine-readable report on stdout,
 * and exits 0, or 1 with one `relaylog: ...` line on failure (verify: 1 when it found a fault).
 * The implementations are imported on use, so other commands do not load the engine.
 */

const DEFAULT_DATA_DIR = './data';
const ARCHIVE_HELP = 'the archive tier the node uses (webhdfs://host:port/path?user=NAME or file:///path), to read archived segments';

const print = (s: string) => process.stdout.write(`${s}\n`);

/** Writes lines to stdout with backpressure; false once stdout is gone (e.g. `| head`). */
function stdoutLines(): { write: (line: string) => Promise<boolean>; done: () => void } {
  let gone = false;
  // EPIPE (the reader went away) or any other write failure: stop writing, wake a waiting write.
  const onError = () => {
    gone = true;
    process.stdout.emit('drain');
  };
  process.stdout.on('error', onError);
  return {
    write: async (line) => {
      if (gone) return false;
      if (!process.stdout.write(`${line}\n`)) await once(process.stdout, 'drain');
      return !gone;
    },
    done: () => void process.stdout.off('error', onError),
  };
}

export function opsCommands(cli: Command): void {
  cli
    .command('verify')
    .description('offline: re-read every batch of every segment (SSD and, with --archive, archived) and list every fault; exit 1 if any')
    .option('--data <dir>', 'data directory (refused while a server holds it)', DEFAULT_DATA_DIR)
    .option('--topic <name>', 'only this topic')
    .option('--archive <url>', ARCHIVE_HELP)
    .option('--json', 'print one JSON report')
    .action(async (o: { data: string; topic?: string; archive?: string; json?: boolean }) => {
      const { runVerify, verifyText } = await import('./verify.js');
      const report = await runVerify({ data: o.data, ...(o.topic !== undefined ? { topic: o.topic } : {}), ...(o.archive !== undefined ? { archive: o.archive } : {}), progress: true });
      print(o.json ? JSON.stringify(report, null, 2) : verifyText(report));
      if (!report.clean) process.exitCode = 1;
    });

  cli
    .command('inspect')
    .description('offline: per topic and partition, the segments (offsets, time range, bytes, tier) and totals; changes nothing')
    .option('--data <dir>', 'data directory (refused while a server holds it)', DEFAULT_DATA_DIR)
    .option('--topic <name>', 'only this topic')
    .option('--archive <url>', `${ARCHIVE_HELP} (only for the first timestamp of segments no longer on SSD)`)
    .option('--json', 'print one JSON report')
    .action(async (o: { data: string; topic?: string; archive?: string; json?: boolean }) => {
      const { runInspect, inspectText } = await import('./inspect.js');
      const report = await runInspect({ data: o.data, ...(o.topic !== undefined ? { topic: o.topic } : {}), ...(o.archive !== undefined ? { archive: o.archive } : {}) });
      print(o.json ? JSON.stringify(report, null, 2) : inspectText(report));
    });

  cli
    .command('dump')
    .description('offline: print records of a partition (offset, timestamp, key, value preview, header count) through every tier, any compression')
    .requiredOption('--topic <name>', 'topic')
    .option('--partition <p>', 'partition', nonNegativeInt('--partition'), 0)
    .option('--data <dir>', 'data directory (refused while a server holds it)', DEFAULT_DATA_DIR)
    .option('--from-offset <offset>', 'start at this offset (default: the log start)', nonNegativeInt('--from-offset'))
    .option('--max <n>', 'stop after N records', positiveInt('--max'))
    .option('--archive <url>', ARCHIVE_HELP)
    .option('--json', 'print one JSON object per record (JSON lines)')
    .action(async (o: { data: string; topic: string; partition: number; fromOffset?: number; max?: number; archive?: string; json?: boolean }) => {
      const { runDump, dumpLine } = await import('./dump.js');
      const out = stdoutLines();
      try {
        await runDump(
          {
            data: o.data,
            topic: o.topic,
            partition: o.partition,
            ...(o.fromOffset !== undefined ? { fromOffset: o.fromOffset } : {}),
            ...(o.max !== undefined ? { max: o.max } : {}),
            ...(o.archive !== undefined ? { archive: o.archive } : {}),
          },
          (r) => out.write(o.json ? JSON.stringify(r) : dumpLine(r)),
        );
      } finally {
        out.done();
      }
    });

  // `archive` uploads (`relaylog archive --data ... | --server ...`); `archive list` is its
  // subcommand. Positional options (on `archive` and on the program above it, which has no options
  // of its own) let `list` have its own --data/--archive/--json while `relaylog archive --data D
  // --archive URL` keeps meaning what it always did.
  const archive = cli.commands.find((c) => c.name() === 'archive');
  if (!archive) throw new Error('opsCommands must be registered after the archive command');
  cli.enablePositionalOptions();
  archive
    .enablePositionalOptions()
    .command('list')
    .description("list archived segments (offsets, bytes, CRC-32C, time range): from the archive's manifest (--archive URL, works while a server runs) or from a data dir's catalog (--data DIR, offline)")
    .option('--data <dir>', "the data directory whose catalog to read (refused while a server holds it)")
    .option('--archive <url>', "the archive whose manifest (sidecars) to read: webhdfs://host:port/path?user=NAME or file:///path")
    .option('--topic <name>', 'only this topic')
    .option('--json', 'print one JSON report')
    .action(async (o: { data?: string; archive?: string; topic?: string; json?: boolean }) => {
      if ((o.data === undefined) === (o.archive === undefined)) throw new UsageError('archive list takes --data DIR or --archive URL (one of them)');
      const { runArchiveList, archiveListText } = await import('./archive-list.js');
      const report = await runArchiveList(o);
      print(o.json ? JSON.stringify(report, null, 2) : archiveListText(report));
    });
}
