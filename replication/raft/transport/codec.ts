/**
 * Raft core messages <-> the RaftMessage protobuf (server/proto/relaylog.proto, service Raft). One
 * message names its partition (topic, partition, topic incarnation) because one stream per node
 * pair carries every partition's traffic. Entries travel as the stored record batches, unchanged.
 */
import type { Entry, Message, MessageType } from '../core/types.js';

/** A core message addressed to one partition of one topic incarnation. */
export interface PartitionMessage {
  readonly topic: string;
  readonly partition: number;
  readonly topic_created_ms: number;
  readonly message: Message;
}

const TO_WIRE: Record<MessageType, string> = {
  vote: 'VOTE',
  pre_vote: 'PRE_VOTE',
  vote_response: 'VOTE_RESPONSE',
  pre_vote_response: 'PRE_VOTE_RESPONSE',
  append: 'APPEND',
  append_response: 'APPEND_RESPONSE',
  heartbeat: 'HEARTBEAT',
  heartbeat_response: 'HEARTBEAT_RESPONSE',
  timeout_now: 'TIMEOUT_NOW',
  snapshot: 'SNAPSHOT',
};
const FROM_WIRE = new Map<string, MessageType>(Object.entries(TO_WIRE).map(([k, v]) => [v, k as MessageType]));

/** The plain object protobufjs encodes as RaftMessage. */
export function encodeRaftMessage(pm: PartitionMessage): Record<string, unknown> {
  const m = pm.message;
  const out: Record<string, unknown> = {
    topic: pm.topic,
    partition: pm.partition,
    topic_created_ms: pm.topic_created_ms,
    type: TO_WIRE[m.type],
    from: m.from,
    to: m.to,
    term: m.term,
  };
  switch (m.type) {
    case 'vote':
    case 'pre_vote':
      out.last_log_index = m.last_log_index;
      out.last_log_term = m.last_log_term;
      out.transfer = m.transfer;
      break;
    case 'vote_response':
    case 'pre_vote_response':
      out.granted = m.granted;
      break;
    case 'append':
      out.prev_log_index = m.prev_log_index;
      out.prev_log_term = m.prev_log_term;
      out.commit = m.commit;
      out.entries = m.entries.map((e) => ({ index: e.index, term: e.term, conf_change: e.kind === 'conf_change', data: e.data }));
      break;
    case 'append_response':
      out.success = m.success;
      out.match_index = m.match_index;
      out.reject_index = m.reject_index;
      out.hint_index = m.hint_index;
      out.hint_term = m.hint_term;
      break;
    case 'heartbeat':
      out.commit = m.commit;
      break;
    case 'snapshot': {
      const s = m.snapshot;
      out.snapshot_index = s.meta.index;
      out.snapshot_term = s.meta.term;
      out.snapshot_voters = s.meta.conf_state.voters;
      out.snapshot_learners = s.meta.conf_state.learners;
      out.snapshot_data = s.data;
      break;
    }
    case 'heartbeat_response':
    case 'timeout_now':
      break;
  }
  return out;
}

const uint = (v: unknown): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new RangeError(`bad integer ${String(v)}`);
  return v;
};

/** A decoded RaftMessage as a core message, or null when it is malformed (dropped by the caller). */
export function decodeRaftMessage(raw: unknown): PartitionMessage | null {
  try {
    const r = raw as Record<string, unknown>;
    const type = FROM_WIRE.get(String(r.type));
    if (type === undefined || typeof r.topic !== 'string') return null;
    const base = { from: uint(r.from), to: uint(r.to), term: uint(r.term) };
    let message: Message;
    switch (type) {
      case 'vote':
      case 'pre_vote':
        message = { type, ...base, last_log_index: uint(r.last_log_index), last_log_term: uint(r.last_log_term), transfer: r.transfer === true };
        break;
      case 'vote_response':
      case 'pre_vote_response':
        message = { type, ...base, granted: r.granted === true };
        break;
      case 'append': {
        const entries: Entry[] = ((r.entries as unknown[]) ?? []).map((x) => {
          const e = x as Record<string, unknown>;
          if (!Buffer.isBuffer(e.data)) throw new RangeError('entry data is not bytes');
          return { index: uint(e.index), term: uint(e.term), kind: e.conf_change === true ? 'conf_change' : 'normal', data: e.data };
        });
        message = { type, ...base, prev_log_index: uint(r.prev_log_index), prev_log_term: uint(r.prev_log_term), commit: uint(r.commit), entries };
        break;
      }
      case 'append_response':
        message = {
          type,
          ...base,
          success: r.success === true,
          match_index: uint(r.match_index),
          reject_index: uint(r.reject_index),
          hint_index: uint(r.hint_index),
          hint_term: uint(r.hint_term),
        };
        break;
      case 'heartbeat':
        message = { type, ...base, commit: uint(r.commit) };
        break;
      case 'heartbeat_response':
      case 'timeout_now':
        message = { type, ...base };
        break;
      case 'snapshot': {
        const ids = (v: unknown): number[] => ((v as unknown[] | undefined) ?? []).map(uint);
        if (!Buffer.isBuffer(r.snapshot_data)) throw new RangeError('snapshot data is not bytes');
        const conf_state = { voters: ids(r.snapshot_voters), learners: ids(r.snapshot_learners) };
        message = { type, ...base, snapshot: { meta: { index: uint(r.snapshot_index), term: uint(r.snapshot_term), conf_state }, data: r.snapshot_data } };
        break;
      }
    }
    const created = r.topic_created_ms;
    if (typeof created !== 'number' || !Number.isSafeInteger(created)) return null;
    return { topic: r.topic, partition: uint(r.partition), topic_created_ms: created, message };
  } catch {
    return null;
  }
}

/** Bytes a message costs on the wire, roughly (entries dominate). */
export function messageBytes(m: Message): number {
  if (m.type !== 'append') return 64;
  let n = 64;
  for (const e of m.entries) n += e.data.length + 24;
  return n;
}
