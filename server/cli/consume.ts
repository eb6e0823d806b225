import type { DecodedRecord } from '../../engine/format/record-batch.js';
import type { RelaylogClient, StartPosition } from '../../client/client.js';
import { Consumer } from '../../client/consumer.js';
import { UsageError } from './args.js';

export interface ConsumeOptions {
  partition: number;
  fromOffset?: number;
  fromTime?: number;
  from?: 'earliest' | 'latest';
  group?: string;
  max?: number;
  follow?: boolean;
  format: 'value' | 'json';
}

/** Exactly one start: --from-offset, --from-time, --from or --group (default: --from earliest). */
export function startOf(o: ConsumeOptions): StartPosition {
  const given: StartPosition[] = [];
  if (o.fromOffset !== undefined) given.push({ offset: o.fromOffset });
  if (o.fromTime !== undefined) given.push({ timestamp_ms: o.fromTime });
  if (o.from !== undefined) given.push({ position: o.from });
  if (o.group !== undefined) given.push({ group: o.group });
  if (given.length > 1) throw new UsageError('give one of --from-offset, --from-time, --from or --group');
  return given[0] ?? { position: 'earliest' };
}

/** One output line: the value as text, or {offset, timestamp, key, value} as JSON (key/value as UTF-8 text). */
export function formatRecord(r: DecodedRecord, format: 'value' | 'json'): string {
  if (format === 'value') return r.value?.toString('utf8') ?? '';
  return JSON.stringify({ offset: r.offset, timestamp: r.timestamp_ms, key: r.key?.toString('utf8') ?? null, value: r.value?.toString('utf8') ?? null });
}

/** Waits for 'drain', or for the stream to fail or close (then the loop ends via the consumer). */
function writable(out: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('error', done);
      out.off('close', done);
      resolve();
    };
    out.once('drain', done);
    out.once('error', done);
    out.once('close', done);
  });
}

/**
 * `relaylog consume`: prints records from the start position up to the high watermark seen at
 * start (or, with --follow, until --max records or a signal). With --group, the position reached
 * is committed for the group on the way out. Returns the number of records printed.
 */
export async function consumeRecords(client: RelaylogClient, topic: string, o: ConsumeOptions, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const from = startOf(o);
  const end = o.follow ? undefined : (await client.listOffsets(topic, o.partition, { position: 'latest' })).high_watermark;
  const consumer = new Consumer(client, { topic, partition: o.partition, from, ...(end !== undefined ? { end_offset: end } : {}) });
  const stop = () => consumer.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  out.on('error', stop); // EPIPE: the reader went away (`| head`)
  let n = 0;
  let commit_at = -1; // when --max stops mid-frame, the consumer's position is not past the frame
  try {
    // One write per frame: a write per record costs a syscall each on a pipe.
    const max = o.max ?? Infinity;
    if (max > 0) {
      for await (const records of consumer.chunks()) {
        const take = records.length <= max - n ? records : records.slice(0, max - n);
        let text = '';
        for (const r of take) text += `${formatRecord(r, o.format)}\n`;
        n += take.length;
        if (!out.write(text)) await writable(out);
        if (n >= max) {
          commit_at = take[take.length - 1]!.offset + 1;
          break;
        }
      }
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    consumer.close();
  }
  if (o.group !== undefined && n > 0) await consumer.commit(o.group, commit_at >= 0 ? commit_at : consumer.next_offset);
  return n;
}
