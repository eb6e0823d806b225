import { afterAll, beforeAll, expect, test } from 'vitest';
import { RelaylogClient } from '../../../client/index.js';
import { encodeBatch } from '../../../engine/index.js';
import { recordsOf } from '../../support/batches.js';
import { IdempotentLoad } from '../../support/idempotent-load.js';
import { assertFreshBuild, startServer, type ServerProcess } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';
import { freePorts, rawBatches } from '../raft/cluster.js';

/*
 * The idempotent producer on a single `relaylog serve` process (127.0.0.1, a fixed port so that a
 * restarted server is at the same address): the server is SIGKILLed after a write it acknowledged,
 * or under a running Producer, and the retried batches are stored once.
 */

beforeAll(() => assertFreshBuild());

const tmp = tempDir('relaylog-idem-');
let server: ServerProcess | null = null;
let address = '';

beforeAll(async () => {
  const [port] = await freePorts(1);
  address = `127.0.0.1:${port}`;
  server = await startServer(tmp.dir, { listen: address });
});

afterAll(async () => {
  await server?.stop('SIGKILL');
  tmp.cleanup();
});

async function restart(): Promise<void> {
  await server!.stop('SIGKILL');
  server = await startServer(tmp.dir, { listen: address });
}

test('a batch retried after the server was killed under it is answered with its first offsets and stored once', async () => {
  const client = new RelaylogClient(address, { deadline_ms: 10_000 });
  try {
    await client.createTopic('once', { partitions: 1 });
    const a = await client.initProducerId();
    const b = await client.initProducerId();
    expect(b.producer_id).not.toBe(a.producer_id);
    const batch = (seq: number, n: number) =>
      encodeBatch(Array.from({ length: n }, (_, i) => ({ value: `s${seq + i}`, timestamp_ms: 1 })), { producer_id: a.producer_id, producer_epoch: a.producer_epoch, base_sequence: seq });
    const first = await client.produce('once', 0, batch(0, 3));
    const second = await client.produce('once', 0, batch(3, 2));
    // The acknowledgement is taken as lost: the server dies, comes back, and the client resends the same bytes.
    await restart();
    const again = await client.produce('once', 0, batch(3, 2));
    expect({ base_offset: again.base_offset, last_offset: again.last_offset }).toEqual({ base_offset: second.base_offset, last_offset: second.last_offset });
    expect((await client.produce('once', 0, batch(0, 3))).base_offset).toBe(first.base_offset);
    await expect(client.produce('once', 0, batch(9, 1))).rejects.toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE' });
    const { batches } = await rawBatches(address, 'once', 0);
    expect(recordsOf(Buffer.concat(batches)).map((r) => r.value!.toString())).toEqual(['s0', 's1', 's2', 's3', 's4']);
    // Producer ids are never handed out twice, across the crash too.
    const c = await client.initProducerId();
    expect([a.producer_id, b.producer_id]).not.toContain(c.producer_id);
  } finally {
    client.close();
  }
}, 60_000);

test('an idempotent Producer writing while the server is SIGKILLed and restarted twice: every record once', async () => {
  const admin = new RelaylogClient(address);
  await admin.createTopic('stream', { partitions: 1 });
  admin.close();
  const client = new RelaylogClient(address, { deadline_ms: 5_000 });
  const load = new IdempotentLoad(client, 'stream', 0, { records_max: 50_000, duration_max_ms: 60_000 });
  try {
    for (let round = 0; round < 2; round++) {
      await load.ackedMore(200, `acknowledged records before kill ${round + 1}`);
      await restart();
    }
    await load.ackedMore(200, 'acknowledged records after the last restart');
  } finally {
    await load.stop();
    client.close();
  }
  const { batches } = await rawBatches(address, 'stream', 0);
  load.expectExactlyOnce(recordsOf(Buffer.concat(batches)));
  // The Producer retried through both crashes: nothing failed for good.
  expect(load.failed.size, load.summary()).toBe(0);
  expect(load.acked.size).toBe(load.sent);
}, 180_000);
