import { invalidConfig, invalidTopic } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { TopicConfig } from './types.js';

/** Kafka's default for delete.retention.ms: tombstones outlive compaction by a day. */
export const DEFAULT_DELETE_RETENTION_MS = 86_400_000;

export const DEFAULT_TOPIC_CONFIG: TopicConfig = {
  partitions: 1,
  segment_bytes: limits.segment_size_bytes,
  segment_ms: limits.segment_age_max_ms,
  retention_bytes: -1,
  retention_ms: 7 * 24 * 3600 * 1000,
  max_message_bytes: limits.batch_size_max_bytes,
  fsync: { policy: 'always' },
  cleanup_policy: 'delete',
  delete_retention_ms: DEFAULT_DELETE_RETENTION_MS,
  remote_storage_enable: true,
  local_retention_bytes: -2,
  local_retention_ms: -2,
};

/** Kafka's rule for topic names: 1..249 of [a-zA-Z0-9._-], and not "." or "..". */
export function validateTopicName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) throw invalidTopic(String(name), 'it is empty');
  if (name.length > limits.topic_name_max_length) throw invalidTopic(name, `longer than ${limits.topic_name_max_length} characters`);
  if (name === '.' || name === '..') throw invalidTopic(name, '"." and ".." are reserved');
  if (!/^[a-zA-Z0-9._-]+$/.test(name)) throw invalidTopic(name, 'only ASCII letters, digits, ".", "_" and "-" are allowed');
}

function parseInteger(key: string, raw: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^-?\d+$/.test(raw.trim())) throw invalidConfig(key, `${JSON.stringify(raw)} is not an integer`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw invalidConfig(key, `${raw} is outside ${min}..${max}`);
  return n;
}

/**
 * Parses topic config given with Kafka's key names (so operators need no new vocabulary).
 * Unknown keys and bad values are refused with the key named.
 */
export function parseTopicConfig(kv: Readonly<Record<string, string>>): Partial<TopicConfig> {
  const out: Partial<TopicConfig> = {};
  let flush_messages: number | undefined;
  let flush_ms: number | undefined;
  for (const [key, raw] of Object.entries(kv)) {
    switch (key) {
      case 'segment.bytes':
        out.segment_bytes = parseInteger(key, raw, 14 * 1024);
        break;
      case 'segment.ms':
        out.segment_ms = parseInteger(key, raw, 1);
        break;
      case 'retention.bytes':
        out.retention_bytes = parseInteger(key, raw, -1);
        break;
      case 'retention.ms':
        out.retention_ms = parseInteger(key, raw, -1);
        break;
      case 'max.message.bytes':
        out.max_message_bytes = parseInteger(key, raw, 64, limits.batch_size_ceiling_bytes);
        break;
      case 'cleanup.policy':
        if (raw !== 'delete' && raw !== 'compact') throw invalidConfig(key, `${JSON.stringify(raw)} must be "delete" or "compact"`);
        out.cleanup_policy = raw;
        break;
      case 'remote.storage.enable':
        if (raw !== 'true' && raw !== 'false') throw invalidConfig(key, `${JSON.stringify(raw)} must be "true" or "false"`);
        out.remote_storage_enable = raw === 'true';
        break;
      case 'delete.retention.ms':
        out.delete_retention_ms = parseInteger(key, raw, 0);
        break;
      case 'local.retention.bytes':
        out.local_retention_bytes = parseInteger(key, raw, -2);
        break;
      case 'local.retention.ms':
        out.local_retention_ms = parseInteger(key, raw, -2);
        break;
      case 'flush.messages':
        flush_messages = raw === KAFKA_LONG_MAX ? Infinity : parseInteger(key, raw, 1);
        break;
      case 'flush.ms':
        flush_ms = raw === KAFKA_LONG_MAX ? Infinity : parseInteger(key, raw, 0);
        break;
      default:
        throw invalidConfig(key, 'unknown config key (known: segment.bytes, segment.ms, retention.bytes, retention.ms, ' +
          'max.message.bytes, cleanup.policy, delete.retention.ms, flush.messages, flush.ms, remote.storage.enable, local.retention.bytes, local.retention.ms)');
    }
  }
  // flush.messages=1 means fsync every append (group-committed). flush.ms=N means fsync every N ms.
  // Other flush.messages values are not supported as such: relaylog fsyncs per group commit or per interval.
  // Kafka's defaults (both Long.MAX_VALUE) mean "leave flushing to the OS": fsync=never.
  if (flush_messages !== undefined && flush_messages !== 1 && flush_messages !== Infinity && flush_ms === undefined) {
    throw invalidConfig('flush.messages', `only 1 (fsync before acknowledging) or ${KAFKA_LONG_MAX} is supported; use flush.ms for interval fsync`);
  }
  if (flush_messages === 1 || flush_ms === 0) out.fsync = { policy: 'always' };
  else if (flush_ms !== undefined && flush_ms !== Infinity) out.fsync = { policy: 'interval', interval_ms: flush_ms };
  else if (flush_ms === Infinity || flush_messages === Infinity) out.fsync = { policy: 'never' };
  return out;
}

const KAFKA_LONG_MAX = '9223372036854775807';

/** The inverse of parseTopicConfig, for DescribeTopic and the CLI. */
export function topicConfigToKafka(c: TopicConfig): Record<string, string> {
  return {
    'segment.bytes': String(c.segment_bytes),
    'segment.ms': String(c.segment_ms),
    'retention.bytes': String(c.retention_bytes),
    'retention.ms': String(c.retention_ms),
    'max.message.bytes': String(c.max_message_bytes),
    'cleanup.policy': c.cleanup_policy,
    'delete.retention.ms': String(c.delete_retention_ms ?? DEFAULT_DELETE_RETENTION_MS),
    'remote.storage.enable': String(c.remote_storage_enable),
    'local.retention.bytes': String(c.local_retention_bytes),
    'local.retention.ms': String(c.local_retention_ms),
    'flush.messages': c.fsync.policy === 'always' ? '1' : KAFKA_LONG_MAX,
    'flush.ms': c.fsync.policy === 'interval' ? String(c.fsync.interval_ms) : c.fsync.policy === 'always' ? '0' : KAFKA_LONG_MAX,
  };
}

/** Fills defaults and checks a complete config. */
export function resolveTopicConfig(partial: Partial<TopicConfig>, defaults: Partial<TopicConfig> = {}): TopicConfig {
  const c: TopicConfig = { ...DEFAULT_TOPIC_CONFIG, ...defaults, ...partial };
  // Only an explicit max.message.bytes may conflict with segment.bytes; a default one shrinks to fit.
  if (partial.max_message_bytes === undefined && defaults.max_message_bytes === undefined) {
    c.max_message_bytes = Math.min(c.max_message_bytes, c.segment_bytes);
  }
  if (!Number.isInteger(c.partitions) || c.partitions < 1 || c.partitions > limits.partitions_max) {
    throw invalidConfig('partitions', `${c.partitions} is outside 1..${limits.partitions_max}`);
  }
  if (c.max_message_bytes > c.segment_bytes) {
    throw invalidConfig('max.message.bytes', `${c.max_message_bytes} is larger than segment.bytes=${c.segment_bytes}`);
  }
  if (c.fsync.policy === 'interval' && !(c.fsync.interval_ms > 0)) throw invalidConfig('flush.ms', 'must be > 0');
  return c;
}
