import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { RelaylogClient } from '../../../client/index.js';
import { decodeRecords, encodeBatch, forEachBatch } from '../../../engine/index.js';
import { KafkaCode } from '../../../server/kafka/errors.js';
import { produce } from '../../../server/kafka/protocol/produce.js';
import { RawKafkaClient } from '../kafka/raw-client.js';
import { assertFreshBuild } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';
import { TestCluster, agreedLeader, allCaughtUp, freePorts } from './cluster.js';

/*
 * The Kafka listener on a Raft cluster (issue 10): every node runs `--kafka-listen`. Metadata from
 * any node lists the three nodes and names each partition's Raft leader; a Kafka producer
 * bootstrapped at a follower sends to the leader and its records are committed on every node; a
 * Produce sent straight to a follower is answered NOT_LEADER_OR_FOLLOWER and nothing is written.
 */

const N = 30;

describe('Kafka clients against a three-node cluster', () => {
  const tmp = tempDir('relaylog-raft-kafka-');
  let cluster: TestCluster;
  let kafka_ports: number[];

  beforeAll(async () => {
    assertFreshBuild();
    kafka_ports = await freePorts(3);
    const kafka_peers = kafka_ports.map((p, i) => `${i + 1}=127.0.0.1:${p}`).join(',');
    cluster = await TestCluster.start(tmp.dir, 3, (id) => ['--kafka-listen', `127.0.0.1:${kafka_ports[id - 1]}`, '--kafka-peers', kafka_peers]);
  }, 60_000);

  afterAll(async () => {
    await cluster?.stopAll();
    tmp.cleanup();
  });

  const kafkaAt = (id: number) =>
    new Kafka({ clientId: 'raft-kafka-test', brokers: [`127.0.0.1:${kafka_ports[id - 1]}`], logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 1000 }, connectionTimeout: 3000 });

  test('Metadata names the Raft leader; a producer bootstrapped at a follower writes through the leader to every node', async () => {
    const c = new RelaylogClient(cluster.addresses.join(','));
    try {
      await c.createTopic('events');
    } finally {
      c.close();
    }
    const leader = await agreedLeader(cluster, 'events', 0);
    const follower = [1, 2, 3].find((id) => id !== leader.id)!;

    const admin = kafkaAt(follower).admin();
    await admin.connect();
    try {
      const md = await admin.fetchTopicMetadata({ topics: ['events'] });
      expect(md.topics[0]!.partitions[0]).toMatchObject({ partitionId: 0, leader: leader.id, replicas: [1, 2, 3], isr: [1, 2, 3] });
    } finally {
      await admin.disconnect();
    }

    const producer = kafkaAt(follower).producer();
    await producer.connect();
    try {
      await producer.send({ topic: 'events', acks: -1, messages: Array.from({ length: N }, (_, i) => ({ partition: 0, key: `k${i}`, value: `v${i}` })) });
    } finally {
      await producer.disconnect();
    }
    // The Raft leader's empty entry holds one offset before the first record; find the records' end.
    const lc = new RelaylogClient(leader.address);
    let hw: number;
    try {
      hw = (await lc.listOffsets('events', 0, { position: 'latest' })).high_watermark;
    } finally {
      lc.close();
    }
    await allCaughtUp(cluster, 'events', 0, hw);
    for (const n of cluster.nodes) {
      const nc = new RelaylogClient(n.address);
      try {
        const r = await nc.fetch('events', 0, 0, 1 << 20);
        const values: string[] = [];
        forEachBatch(r.records, (pos, size) => {
          for (const rec of decodeRecords(r.records.subarray(pos, pos + size))) values.push(rec.value!.toString());
        });
        expect(values, `node ${n.id}`).toEqual(Array.from({ length: N }, (_, i) => `v${i}`));
      } finally {
        nc.close();
      }
    }
  }, 120_000);

  test('Metadata reports a partition\'s replica set as it changes (remove a follower, add it back)', async () => {
    const leader = await agreedLeader(cluster, 'events', 0);
    const follower = [1, 2, 3].find((id) => id !== leader.id)!;
    const c = new RelaylogClient(cluster.addresses.join(','), { redirects_max: 20 });
    const replicas = async () => {
      const admin = kafkaAt(leader.id).admin();
      await admin.connect();
      try {
        return (await admin.fetchTopicMetadata({ topics: ['events'] })).topics[0]!.partitions[0]!.replicas;
      } finally {
        await admin.disconnect();
      }
    };
    // A node reports a change once it has the change's entry in its log. The node asked is the
    // leader found above; on this busy machine leadership may move in between, and a follower gets
    // the entry a moment after the leader answers. So: that node's Metadata, within a bound.
    const eventually = async (want: number[]) => {
      let got: number[] = [];
      for (let i = 0; i < 50; i++) {
        got = await replicas();
        if (JSON.stringify(got) === JSON.stringify(want)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      return got;
    };
    try {
      const without = (await c.removeReplica('events', 0, follower)).voters;
      expect(without).toEqual([1, 2, 3].filter((id) => id !== follower));
      expect(await eventually(without)).toEqual(without);
      expect((await c.addReplica('events', 0, follower)).voters).toEqual([1, 2, 3]);
      expect(await eventually([1, 2, 3])).toEqual([1, 2, 3]);
    } finally {
      c.close();
    }
  }, 60_000);

  test('a Produce sent straight to a follower is NOT_LEADER_OR_FOLLOWER, and nothing is written', async () => {
    const leader = await agreedLeader(cluster, 'events', 0);
    const follower = [1, 2, 3].find((id) => id !== leader.id)!;
    const before = await hwAt(cluster.node(leader.id).address);
    // One raw Produce v7 straight to the follower's Kafka listener (a client would go to the leader).
    const raw = await RawKafkaClient.connect(`127.0.0.1:${kafka_ports[follower - 1]}`);
    try {
      const r = await raw.send(produce, 7, { transactional_id: null, acks: -1, timeout_ms: 5000, topic_data: [{ name: 'events', partition_data: [{ index: 0, records: encodeBatch([{ value: 'nope' }]) }] }] });
      expect(r.responses[0]!.partition_responses[0]).toMatchObject({ index: 0, error_code: KafkaCode.NOT_LEADER_OR_FOLLOWER });
    } finally {
      await raw.close();
    }
    expect(await hwAt(cluster.node(leader.id).address)).toBe(before);
  }, 60_000);
});

async function hwAt(address: string): Promise<number> {
  const c = new RelaylogClient(address);
  try {
    return (await c.listOffsets('events', 0, { position: 'latest' })).high_watermark;
  } finally {
    c.close();
  }
}
