import { describe, expect, test } from 'vitest';
import { planRetention, type RetentionInput } from '../../../engine/log/retention.js';

const seg = (base_offset: number, size_bytes: number, max_timestamp_ms: number, archived = false) => ({ base_offset, size_bytes, max_timestamp_ms, archived });
const NOW = 1_000_000;
const base: RetentionInput = {
  now_ms: NOW,
  retention_bytes: -1,
  retention_ms: -1,
  local_retention_bytes: -2,
  local_retention_ms: -2,
  archived_only: [],
  local: [],
  archive_enabled: false,
};

describe('planRetention', () => {
  test('no limits: nothing goes', () => {
    expect(planRetention({ ...base, local: [seg(0, 10, 1), seg(10, 10, 2)] })).toEqual({ archive_deletes: [], local_deletes: [] });
  });

  test('retention.bytes deletes oldest sealed segments while the rest still meets the limit; never the active one', () => {
    const local = [seg(0, 100, 1), seg(10, 100, 2), seg(20, 100, 3), seg(30, 100, 4)];
    expect(planRetention({ ...base, retention_bytes: 200, local }).local_deletes.map((d) => d.base_offset)).toEqual([0, 10]);
    expect(planRetention({ ...base, retention_bytes: 0, local }).local_deletes.map((d) => d.base_offset)).toEqual([0, 10, 20]);
  });

  test('retention.ms judges by the newest record and stops at the first young segment', () => {
    const local = [seg(0, 1, NOW - 5000), seg(1, 1, NOW - 10), seg(2, 1, NOW - 5000), seg(3, 1, NOW - 9000)];
    expect(planRetention({ ...base, retention_ms: 1000, local }).local_deletes.map((d) => d.base_offset)).toEqual([0]);
  });

  test('total retention spans archive and SSD, oldest first, deleting archive copies of local segments too', () => {
    const plan = planRetention({
      ...base,
      archive_enabled: true,
      retention_bytes: 150, // 450 bytes in all: 0, 10 and 20 go (each leaves >= 150)
      archived_only: [seg(0, 100, 1), seg(10, 100, 2)],
      local: [seg(20, 100, 3, true), seg(30, 100, 4, false), seg(40, 50, 5)],
    });
    expect(plan.archive_deletes).toEqual([0, 10]);
    expect(plan.local_deletes).toEqual([{ base_offset: 20, and_archive: true }]);
  });

  test('local retention drops only archived local copies, never the only copy', () => {
    const plan = planRetention({
      ...base,
      archive_enabled: true,
      local_retention_bytes: 0,
      local: [seg(0, 100, 1, true), seg(10, 100, 2, true), seg(20, 100, 3, false), seg(30, 100, 4, true), seg(40, 10, 5)],
    });
    expect(plan.local_deletes).toEqual([
      { base_offset: 0, and_archive: false },
      { base_offset: 10, and_archive: false },
    ]);
    expect(plan.archive_deletes).toEqual([]);
  });

  test('local retention -2 follows total retention; without an archive it does nothing', () => {
    const local = [seg(0, 100, NOW - 9000, true), seg(10, 100, NOW, true), seg(20, 1, NOW)];
    expect(planRetention({ ...base, archive_enabled: true, local_retention_ms: 1000, local }).local_deletes).toEqual([{ base_offset: 0, and_archive: false }]);
    expect(planRetention({ ...base, archive_enabled: false, local_retention_ms: 1000, local }).local_deletes).toEqual([]);
  });
});
