import { Producer } from '../../client/producer.js';
import type { RelaylogClient } from '../../client/client.js';

export interface ProduceOptions {
  partition: number;
  key?: string;
  keySeparator?: string;
  acks: 'all' | 'leader';
  lingerMs: number;
  batchBytes: number;
}

/**
 * Splits a byte stream into lines (a trailing '\r' is dropped) without decoding them: each line
 * is a view into the chunk it came from, and a line cut by a chunk boundary is joined once.
 */
export async function* lines(input: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer[]> {
  let carry: Buffer | null = null;
  for await (const chunk of input) {
    const buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const out: Buffer[] = [];
    let start = 0;
    for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10, start)) {
      let line = buf.subarray(start, nl);
      if (carry) {
        line = Buffer.concat([carry, line]);
        carry = null;
      }
      out.push(stripCr(line));
      start = nl + 1;
    }
    if (start < buf.length) carry = carry ? Buffer.concat([carry, buf.subarray(start)]) : Buffer.from(buf.subarray(start));
    if (out.length > 0) yield out;
  }
  if (carry && carry.length > 0) yield [stripCr(carry)];
}

const stripCr = (line: Buffer): Buffer => (line.length > 0 && line[line.length - 1] === 13 ? line.subarray(0, line.length - 1) : line);

/** Splits `line` at the first `sep`: the key before it, the value after; a line without it has no key. */
export function splitKey(line: Buffer, sep: Buffer): { key: Buffer | null; value: Buffer } {
  const i = line.indexOf(sep);
  return i < 0 ? { key: null, value: line } : { key: line.subarray(0, i), value: line.subarray(i + sep.length) };
}

/**
 * `relaylog produce`: one record per input line, batched by the Producer (linger, batch bytes,
 * in-flight bound), so a million lines take about a second. Stops at the first refused batch.
 * Returns the number of records acknowledged.
 */
export async function produceLines(client: RelaylogClient, topic: string, input: AsyncIterable<Buffer | string>, o: ProduceOptions): Promise<number> {
  const producer = new Producer(client, { topic, partition: o.partition, linger_ms: o.lingerMs, batch_bytes: o.batchBytes, max_in_flight: 4, acks: o.acks });
  const fixed_key = o.key === undefined ? null : Buffer.from(o.key);
  const sep = o.keySeparator === undefined ? null : Buffer.from(o.keySeparator);
  let n = 0;
  try {
    for await (const chunk of lines(input)) {
      const timestamp_ms = Date.now();
      for (const line of chunk) {
        if (sep) {
          const { key, value } = splitKey(line, sep);
          producer.push({ key, value, timestamp_ms });
        } else producer.push({ key: fixed_key, value: line, timestamp_ms });
        n++;
      }
      await producer.ready();
    }
  } finally {
    await producer.close();
  }
  return n;
}
