/**
 * Every bound in the engine, named once, units last. A bound that is hit gives a named error,
 * never an unbounded queue or a slow death.
 */
export const limits = {
  /** Default `max.message.bytes`: the largest single record batch accepted (Kafka's default is ~1 MiB; AI samples are bigger). */
  batch_size_max_bytes: 8 * 1024 * 1024,
  /** Hard ceiling for `max.message.bytes`, whatever a topic asks for. */
  batch_size_ceiling_bytes: 64 * 1024 * 1024,
  /** Default `segment.bytes`. */
  segment_size_bytes: 1024 * 1024 * 1024,
  /** Default `segment.ms` (7 days, as Kafka). */
  segment_age_max_ms: 7 * 24 * 3600 * 1000,
  /** One sparse offset/time index entry at least every this many bytes of log (`index.interval.bytes`). */
  index_interval_bytes: 4096,
  /** At most this many bytes of batches are written by one group commit. */
  group_commit_max_bytes: 16 * 1024 * 1024,
  /** Appends waiting for the writer beyond this many bytes are refused with LIMIT_EXCEEDED. */
  append_queue_max_bytes: 256 * 1024 * 1024,
  /** Default free-space floor under which appends fail with DISK_FULL. */
  disk_free_floor_bytes: 256 * 1024 * 1024,
  /** Free space is re-checked after this many bytes have been written ... */
  disk_check_interval_bytes: 16 * 1024 * 1024,
  /** ... or after this long, whichever comes first. */
  disk_check_interval_ms: 1000,
  /** Sealed segment files kept open at once per partition (least recently used are closed). */
  open_sealed_segments_max: 32,
  /**
   * Segment-file reads in flight at once, node-wide. libuv runs file I/O on a pool of
   * UV_THREADPOOL_SIZE threads (4 by default; `relaylog` starts with 16): capping reads below it
   * keeps threads free for appends' writes and fdatasyncs, so catch-up readers cannot queue the
   * append path behind them.
   */
  segment_reads_concurrent_max: 2,
  /** A single read returns at most this many bytes (a single larger batch is still returned whole). */
  read_size_max_bytes: 64 * 1024 * 1024,
  /** Default node-wide memory-tier budget (hot tails of all partitions together). */
  memory_tier_bytes: 256 * 1024 * 1024,
  /** Partitions per topic. */
  partitions_max: 1024,
  /** Kafka's limit on topic names. */
  topic_name_max_length: 249,
  /** Idempotent producer: batches remembered per producer id and partition (Kafka's 5). */
  producer_window_batches: 5,
  /** Idempotent producer: producer ids remembered per partition; the least recently written is forgotten beyond. */
  producer_ids_per_partition_max: 100_000,
  /**
   * Idempotent producer: on open, the producer state is rebuilt by scanning the newest local
   * segments until at least this many bytes are read (docs/raft.md, "Idempotent producer").
   */
  producer_state_scan_min_bytes: 64 * 1024 * 1024,
} as const;
