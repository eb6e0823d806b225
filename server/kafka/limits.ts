/**
 * Every bound the Kafka listener keeps, named once, units last (engine bounds live in
 * engine/base/limits.ts, gRPC bounds in server/rpc/limits.ts). Hitting one closes a connection
 * with a log line, answers a named Kafka error, or applies backpressure — never an unbounded queue.
 */
export const kafkaLimits = {
  /** The largest request frame accepted (the 4-byte size prefix excluded); larger closes the connection. */
  frame_size_max_bytes: 100 * 1024 * 1024,
  /** Requests read from one connection and not yet answered; past this the socket is not read (backpressure). */
  inflight_requests_max: 64,
  /** Open client connections; one more is closed at once with a log line. */
  connections_max: 4096,
  /** A connection with no traffic either way for this long is closed (connections.max.idle.ms). */
  connection_idle_max_ms: 600_000,
  /** Elements in any one array of a request (topics, partitions, protocols, ...). */
  array_length_max: 100_000,
  /** A Fetch long poll waits at most this long, whatever max_wait_ms asks. */
  fetch_wait_max_ms: 30_000,
  /** Bytes a Fetch response carries when its max_bytes asks for more. */
  fetch_response_max_bytes: 64 * 1024 * 1024,
  /** Bytes of response frames handed to one socket and not yet flushed; past this no further response is written until it drains. */
  socket_backlog_max_bytes: 16 * 1024 * 1024,
  /** Consumer groups' session timeouts are clamped into [min, max] (group.min/max.session.timeout.ms). */
  group_session_timeout_min_ms: 1_000,
  group_session_timeout_max_ms: 300_000,
  /** A rebalance waits at most this long for members to rejoin, whatever they ask. */
  group_rebalance_timeout_max_ms: 300_000,
  /** Members per consumer group. */
  group_members_max: 1_000,
  /** Consumer groups with members at once. */
  groups_max: 10_000,
  /** How often group timers (session expiry, rebalance timeout) are checked. */
  group_tick_ms: 100,
  /** Delay before the first rebalance of an empty group completes (group.initial.rebalance.delay.ms; 0 = none). */
  group_initial_rebalance_delay_ms: 0,
  /** Bytes of an offset commit's metadata string (offset.metadata.max.bytes). */
  offset_metadata_max_bytes: 4096,
  /** On stop(), in-flight requests get this long before their connections are destroyed. */
  shutdown_drain_max_ms: 5_000,
} as const;

export type KafkaLimits = { -readonly [K in keyof typeof kafkaLimits]: number };
