import { describe, expect, test } from 'vitest';
import type { Message } from '../../../replication/raft/core/types.js';
import { decodeRaftMessage, encodeRaftMessage } from '../../../replication/raft/transport/codec.js';
import { decodeMessage, encodeMessage, messageType } from '../../../server/proto/load.js';

/* Raft messages survive the wire (RaftFrame protobuf) unchanged, InstallSnapshot included. */

const frame = messageType('RaftFrame');

function roundTrip(m: Message): Message | null {
  const bytes = encodeMessage(frame, { from: m.from, to: m.to, messages: [encodeRaftMessage({ topic: 't', partition: 3, topic_created_ms: 17, message: m })] });
  const raw = (decodeMessage(frame, bytes).messages as unknown[])[0];
  const pm = decodeRaftMessage(raw);
  expect(pm === null ? null : [pm.topic, pm.partition, pm.topic_created_ms]).toEqual(['t', 3, 17]);
  return pm?.message ?? null;
}

describe('Raft wire codec', () => {
  test('a snapshot message keeps its index, term, membership and data', () => {
    const m: Message = {
      type: 'snapshot',
      from: 1,
      to: 3,
      term: 9,
      snapshot: { meta: { index: 12_345, term: 8, conf_state: { voters: [1, 2, 3], learners: [5] } }, data: Buffer.from('{"next_offset":987654}') },
    };
    expect(roundTrip(m)).toEqual(m);
  });

  test('an append keeps its entries byte for byte', () => {
    const m: Message = {
      type: 'append',
      from: 2,
      to: 1,
      term: 4,
      prev_log_index: 10,
      prev_log_term: 3,
      commit: 9,
      entries: [
        { index: 11, term: 4, kind: 'normal', data: Buffer.from([1, 2, 3]) },
        { index: 12, term: 4, kind: 'conf_change', data: Buffer.from('{}') },
      ],
    };
    expect(roundTrip(m)).toEqual(m);
  });

  test('a snapshot whose data is not bytes is dropped as malformed', () => {
    expect(decodeRaftMessage({ type: 'SNAPSHOT', topic: 't', partition: 0, topic_created_ms: 1, from: 1, to: 2, term: 1, snapshot_index: 3, snapshot_term: 1, snapshot_data: 'x' })).toBeNull();
  });
});
