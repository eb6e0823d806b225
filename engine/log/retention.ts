/**
 * Retention planning — a pure function: what to delete, given the segments, the config and the time.
 *
 * Total retention (`retention.bytes`, `retention.ms`) applies to the whole log, archive and SSD
 * together: the oldest segments go first, from the archive and locally. Local retention
 * (`local.retention.bytes`, `local.retention.ms`; -2 = same as total) applies to the SSD tier only
 * and only to segments whose archive copy is verified: those lose their local copy and stay readable
 * from the archive. The active segment is never deleted. Age is judged by a segment's newest record.
 */

export interface RetentionSegment {
  base_offset: number;
  size_bytes: number;
  max_timestamp_ms: number;
}

export interface RetentionInput {
  now_ms: number;
  retention_bytes: number;
  retention_ms: number;
  local_retention_bytes: number;
  local_retention_ms: number;
  /** Segments held only by the archive (older than every local one), oldest first. */
  archived_only: readonly RetentionSegment[];
  /** Local segments, oldest first; the last is the active one. */
  local: ReadonlyArray<RetentionSegment & { archived: boolean }>;
  /** Local retention applies only when the partition is archived at all. */
  archive_enabled: boolean;
}

export interface RetentionPlan {
  /** Archived-only segments to delete from the archive (a prefix of archived_only). */
  archive_deletes: number[];
  /** Local segments to delete (a prefix of local), each also from the archive if `and_archive`. */
  local_deletes: Array<{ base_offset: number; and_archive: boolean }>;
}

const expired = (s: RetentionSegment, now_ms: number, limit_ms: number) =>
  limit_ms >= 0 && s.max_timestamp_ms >= 0 && s.max_timestamp_ms < now_ms - limit_ms;

export function planRetention(input: RetentionInput): RetentionPlan {
  const plan: RetentionPlan = { archive_deletes: [], local_deletes: [] };
  const sealed = input.local.slice(0, -1);
  let total = 0;
  for (const s of input.archived_only) total += s.size_bytes;
  for (const s of input.local) total += s.size_bytes;

  // 1. Total retention over archive + SSD, oldest first.
  let a = 0;
  let l = 0;
  for (;;) {
    const s = a < input.archived_only.length ? input.archived_only[a]! : sealed[l];
    if (!s) break;
    const over = input.retention_bytes >= 0 && total - s.size_bytes >= input.retention_bytes;
    if (!over && !expired(s, input.now_ms, input.retention_ms)) break;
    total -= s.size_bytes;
    if (a < input.archived_only.length) {
      plan.archive_deletes.push(s.base_offset);
      a++;
    } else {
      plan.local_deletes.push({ base_offset: s.base_offset, and_archive: sealed[l]!.archived });
      l++;
    }
  }

  // 2. Local retention: archived segments leave the SSD tier.
  if (!input.archive_enabled) return plan;
  const local_bytes_max = input.local_retention_bytes === -2 ? input.retention_bytes : input.local_retention_bytes;
  const local_ms_max = input.local_retention_ms === -2 ? input.retention_ms : input.local_retention_ms;
  let local_total = 0;
  for (const s of input.local.slice(l)) local_total += s.size_bytes;
  for (; l < sealed.length; l++) {
    const s = sealed[l]!;
    if (!s.archived) break; // never drop the only copy
    const over = local_bytes_max >= 0 && local_total - s.size_bytes >= local_bytes_max;
    if (!over && !expired(s, input.now_ms, local_ms_max)) break;
    local_total -= s.size_bytes;
    plan.local_deletes.push({ base_offset: s.base_offset, and_archive: false });
  }
  return plan;
}
