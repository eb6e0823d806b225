import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Kafka, logLevel, type Consumer as KafkaConsumer, type EachMessagePayload } from 'kafkajs';
import { RelaylogClient } from '../../../client/index.js';
import { decodeRecords, encodeBatch, forEachBatch } from '../../../engine/index.js';
import { assertFreshBuild, startServer, type ServerProcess } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';
import { waitUntil } from './harness.js';

/*
 * The Kafka listener as users run it: `relaylog serve --kafka-listen` and `relaylog relay
 * --kafka-listen` as real processes on loopback. Records produced with kafkajs are read back
 * identically over gRPC and records produced over gRPC identically over Kafka (same offsets, same
 * timestamps, same bytes); a relay serves the copy to Kafka consumers and refuses Kafka producers;
 * SIGTERM stops a node with a Kafka client attached, exit 0.
 */

const T0 = Math.floor(Date.now() / 1000) * 1000 - 600_000;
const KAFKA_N = 40;
const GRPC_N = 25;
const WAIT_MS = 30_000;

interface Seen {
  offset: number;
  key: string | null;
  value: string | null;
  timestamp: number;
}

/** Waits (bounded) for the server's "relaylog kafka listening on ADDR" line. */
async function kafkaAddress(p: ServerProcess): Promise<string> {
  let addr: string | null = null;
  await waitUntil(() => (addr = /relaylog kafka listening on (\S+)\n/.exec(p.stdout())?.[1] ?? null) !== null, 15_000, 'the kafka listening line');
  return addr!;
}

const kafka = (broker: string) =>
  new Kafka({ clientId: 'relaylog-process-test', brokers: [broker], logLevel: logLevel.NOTHING, retry: { retries: 2, initialRetryTime: 50, maxRetryTime: 300 }, connectionTimeout: 3000 });

async function consumeKafka(broker: string, topic: string, group: string, n: number): Promise<Seen[]> {
  const consumer: KafkaConsumer = kafka(broker).consumer({ groupId: group, sessionTimeout: 10_000, rebalanceTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 200 });
  const got: Seen[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }: EachMessagePayload) => {
        got.push({ offset: Number(message.offset), key: message.key?.toString() ?? null, value: message.value?.toString() ?? null, timestamp: Number(message.timestamp) });
      },
    });
    await waitUntil(() => got.length >= n, WAIT_MS, `${n} records over Kafka from ${broker}`);
  } finally {
    await consumer.disconnect();
  }
  return got.sort((a, b) => a.offset - b.offset);
}

async function fetchGrpc(address: string, topic: string, end: number): Promise<{ records: Seen[]; bytes: Buffer }> {
  const client = new RelaylogClient(address);
  const records: Seen[] = [];
  const parts: Buffer[] = [];
  try {
    for (let o = 0, rounds = 0; o < end && rounds < 1000; rounds++) {
      const r = await client.fetch(topic, 0, o, 1 << 20);
      parts.push(Buffer.from(r.records));
      forEachBatch(r.records, (pos, size) => {
        for (const x of decodeRecords(r.records.subarray(pos, pos + size))) records.push({ offset: x.offset, key: x.key?.toString() ?? null, value: x.value?.toString() ?? null, timestamp: x.timestamp_ms });
      });
      o = r.next_offset;
    }
  } finally {
    client.close();
  }
  return { records, bytes: Buffer.concat(parts) };
}

describe('relaylog serve/relay --kafka-listen as real processes', () => {
  const tmp = tempDir('relaylog-kafka-proc-');
  let origin: ServerProcess;
  let relay: ServerProcess;
  let originKafka: string;
  let relayKafka: string;

  beforeAll(async () => {
    assertFreshBuild();
    origin = await startServer(`${tmp.dir}/origin`, { extra_args: ['--kafka-listen', '127.0.0.1:0'] });
    originKafka = await kafkaAddress(origin);
    relay = await startServer(`${tmp.dir}/relay`, { command: 'relay', extra_args: ['--upstream', origin.address, '--kafka-listen', '127.0.0.1:0'] });
    relayKafka = await kafkaAddress(relay);
  }, 60_000);

  afterAll(async () => {
    await relay?.stop();
    await origin?.stop();
    tmp.cleanup();
  });

  test('a record produced over Kafka reads back over gRPC and vice versa: same offsets, timestamps and bytes', async () => {
    const client = new RelaylogClient(origin.address);
    try {
      await client.createTopic('mixed');
      const producer = kafka(originKafka).producer();
      await producer.connect();
      try {
        for (let i = 0; i < KAFKA_N; i += 10) {
          await producer.send({ topic: 'mixed', acks: -1, messages: Array.from({ length: 10 }, (_, j) => ({ partition: 0, key: `kk${i + j}`, value: `kafka-${i + j}`, timestamp: String(T0 + i + j) })) });
        }
      } finally {
        await producer.disconnect();
      }
      const grpcRecords = Array.from({ length: GRPC_N }, (_, i) => ({ key: i % 2 ? null : `gk${i}`, value: `grpc-${i}`, timestamp_ms: T0 + KAFKA_N + i }));
      const r = await client.produce('mixed', 0, encodeBatch(grpcRecords, { timestamp_ms: T0 + KAFKA_N }));
      expect(r.base_offset).toBe(KAFKA_N);
    } finally {
      client.close();
    }
    const want: Seen[] = [
      ...Array.from({ length: KAFKA_N }, (_, i) => ({ offset: i, key: `kk${i}`, value: `kafka-${i}`, timestamp: T0 + i })),
      ...Array.from({ length: GRPC_N }, (_, i) => ({ offset: KAFKA_N + i, key: i % 2 ? null : `gk${i}`, value: `grpc-${i}`, timestamp: T0 + KAFKA_N + i })),
    ];
    const total = KAFKA_N + GRPC_N;
    const overGrpc = await fetchGrpc(origin.address, 'mixed', total);
    expect(overGrpc.records).toEqual(want);
    expect(await consumeKafka(originKafka, 'mixed', 'proc-origin', total)).toEqual(want);

    // The relay copies the topic without being told; its Kafka consumers read the same records,
    // and its gRPC Fetch returns the origin's bytes.
    let relayed: Awaited<ReturnType<typeof fetchGrpc>> | null = null;
    const until = Date.now() + WAIT_MS;
    while (Date.now() < until) {
      relayed = await fetchGrpc(relay.address, 'mixed', total).catch(() => null);
      if (relayed && relayed.records.length === total) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(relayed?.bytes.equals(overGrpc.bytes)).toBe(true);
    expect(await consumeKafka(relayKafka, 'mixed', 'proc-relay', total)).toEqual(want);
  }, 120_000);

  test('a Kafka producer at the relay is refused and nothing is written anywhere', async () => {
    const client = new RelaylogClient(origin.address);
    await client.createTopic('refused');
    client.close();
    // Wait (bounded) until the relay has the topic, so the refusal is not an unknown topic.
    const relayClient = new RelaylogClient(relay.address);
    try {
      const until = Date.now() + WAIT_MS;
      while (Date.now() < until && !(await relayClient.listTopics()).some((t) => t.name === 'refused')) await new Promise((res) => setTimeout(res, 100));
      const producer = kafka(relayKafka).producer({ retry: { retries: 0 } });
      await producer.connect();
      try {
        await expect(producer.send({ topic: 'refused', acks: -1, messages: [{ partition: 0, value: 'nope' }] })).rejects.toThrow(/leader/i);
      } finally {
        await producer.disconnect();
      }
      expect((await relayClient.listOffsets('refused', 0, { position: 'latest' })).offset).toBe(0);
    } finally {
      relayClient.close();
    }
    const o = new RelaylogClient(origin.address);
    try {
      expect((await o.listOffsets('refused', 0, { position: 'latest' })).offset).toBe(0);
    } finally {
      o.close();
    }
  }, 60_000);

  test('SIGTERM with a Kafka client connected: the node stops cleanly (exit 0) and keeps what was acknowledged', async () => {
    const producer = kafka(originKafka).producer();
    await producer.connect();
    await producer.send({ topic: 'mixed', acks: -1, messages: [{ partition: 0, value: 'last' }] });
    // The client stays connected while the server stops.
    expect(await origin.stop('SIGTERM')).toBe(0);
    await producer.disconnect().catch(() => undefined);
    origin = await startServer(`${tmp.dir}/origin`, { extra_args: ['--kafka-listen', '127.0.0.1:0'] });
    const c = new RelaylogClient(origin.address);
    try {
      expect((await c.listOffsets('mixed', 0, { position: 'latest' })).offset).toBe(KAFKA_N + GRPC_N + 1);
    } finally {
      c.close();
    }
  }, 60_000);
});
