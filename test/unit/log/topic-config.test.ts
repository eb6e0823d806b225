import { describe, expect, test } from 'vitest';
import { parseTopicConfig, resolveTopicConfig, topicConfigToKafka, validateTopicName } from '../../../engine/index.js';

describe('topic config with Kafka key names', () => {
  test('parses every supported key', () => {
    expect(
      parseTopicConfig({
        'segment.bytes': '1048576',
        'segment.ms': '60000',
        'retention.bytes': '-1',
        'retention.ms': '86400000',
        'max.message.bytes': '65536',
        'cleanup.policy': 'compact',
        'flush.ms': '100',
        'remote.storage.enable': 'false',
        'local.retention.bytes': '1000000',
        'local.retention.ms': '-2',
      }),
    ).toEqual({
      segment_bytes: 1048576,
      segment_ms: 60000,
      retention_bytes: -1,
      retention_ms: 86400000,
      max_message_bytes: 65536,
      cleanup_policy: 'compact',
      fsync: { policy: 'interval', interval_ms: 100 },
      remote_storage_enable: false,
      local_retention_bytes: 1000000,
      local_retention_ms: -2,
    });
    expect(parseTopicConfig({ 'flush.messages': '1' })).toEqual({ fsync: { policy: 'always' } });
  });

  test('refuses unknown keys and bad values, naming the key', () => {
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ 'segment.byte': '1' }, /segment\.byte: unknown config key/],
      [{ 'segment.bytes': 'lots' }, /segment\.bytes: "lots" is not an integer/],
      [{ 'segment.bytes': '100' }, /segment\.bytes: 100 is outside/],
      [{ 'retention.ms': '-2' }, /retention\.ms/],
      [{ 'cleanup.policy': 'forever' }, /cleanup\.policy/],
      [{ 'max.message.bytes': String(2 ** 40) }, /max\.message\.bytes/],
      [{ 'flush.messages': '1000' }, /flush\.messages/],
      [{ 'remote.storage.enable': 'yes' }, /remote\.storage\.enable/],
      [{ 'local.retention.ms': '-3' }, /local\.retention\.ms/],
    ];
    for (const [kv, msg] of bad) {
      expect(() => parseTopicConfig(kv)).toThrow(msg);
      expect(() => parseTopicConfig(kv)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    }
  });

  test('round-trips through the Kafka names', () => {
    const c = resolveTopicConfig({ segment_bytes: 1 << 20, fsync: { policy: 'interval', interval_ms: 250 } });
    const back = resolveTopicConfig(parseTopicConfig(topicConfigToKafka(c)));
    expect(back).toEqual(c);
    for (const fsync of [{ policy: 'always' }, { policy: 'never' }] as const) {
      const x = resolveTopicConfig({ fsync });
      expect(resolveTopicConfig(parseTopicConfig(topicConfigToKafka(x)))).toEqual(x);
    }
    expect(parseTopicConfig({ 'flush.ms': '9223372036854775807' })).toEqual({ fsync: { policy: 'never' } });
  });

  test('an explicit max.message.bytes larger than segment.bytes is refused; a default one shrinks to fit', () => {
    expect(() => resolveTopicConfig({ segment_bytes: 1 << 20, max_message_bytes: 2 << 20 })).toThrow(/max\.message\.bytes/);
    expect(resolveTopicConfig({ segment_bytes: 1 << 20 }).max_message_bytes).toBe(1 << 20);
  });

  test('topic names follow Kafka rules', () => {
    for (const ok of ['a', 'train.samples-v2_EU', 'x'.repeat(249)]) expect(() => validateTopicName(ok)).not.toThrow();
    for (const bad of ['', '.', '..', 'a/b', 'a b', 'ü', 'x'.repeat(250)]) {
      expect(() => validateTopicName(bad)).toThrow(expect.objectContaining({ code: 'INVALID_TOPIC' }));
    }
  });
});
