/**
 * Every bound the gRPC server keeps, named once, units last (engine bounds live in
 * engine/base/limits.ts). Hitting one gives a named error or backpressure, never an unbounded queue.
 */
export const serverLimits = {
  /** The largest gRPC message received or sent: a produce request or a fetch/subscribe frame. Room for one max-size batch plus framing. */
  message_max_bytes: 65 * 1024 * 1024,
  /** Fetch returns at most this many bytes when the request leaves max_bytes at 0. */
  fetch_default_bytes: 1024 * 1024,
  /** A Fetch long poll waits at most this long, whatever the request asks. */
  fetch_wait_max_ms: 30_000,
  /** Subscribe frame size when the request leaves max_frame_bytes at 0. */
  subscribe_frame_default_bytes: 1024 * 1024,
  /** Subscribe frames never exceed this (a single larger batch is still sent whole). */
  subscribe_frame_max_bytes: 16 * 1024 * 1024,
  /** Bytes written to one subscriber's stream and not yet handed to its socket; the log is not read past this. */
  subscribe_inflight_max_bytes: 8 * 1024 * 1024,
  /** Catch-up Subscribe frames sent per event-loop turn, over all subscribers (at least one frame); the rest wait for the next turn, after produce requests (turn-budget.ts). */
  replay_bytes_per_turn: 4 * 1024 * 1024,
  /** Subscribe frames up to this size (a live tail's) are sent at once, outside the per-turn budget. */
  replay_small_frame_bytes: 256 * 1024,
  /** While produce requests arrive, catch-up replay is slowed whenever the event loop runs later than this (ms, the longest delay in a period); 0: never (replay-pacer.ts). */
  replay_pace_lag_ms: 5,
  /** Paced catch-up replay never goes slower than this, over all subscribers of the server. */
  replay_pace_floor_bytes_per_s: 32 * 1024 * 1024,
  /** The pacing controller's period. */
  replay_pace_period_ms: 100,
  /** One long poll of a subscriber at the tail lasts this long before it re-checks (the stream stays open). */
  subscribe_poll_ms: 5_000,
  /** Concurrent Subscribe streams per server; more are refused with RESOURCE_EXHAUSTED. */
  subscribers_max: 4096,
  /** Bytes of one ProduceStream's record sets appended but not yet acknowledged; reading the stream pauses past this. */
  produce_stream_inflight_max_bytes: 64 * 1024 * 1024,
  /** On SIGTERM, in-flight calls get this long to finish before they are cancelled. */
  shutdown_drain_max_ms: 10_000,
} as const;

export type ServerLimits = { -readonly [K in keyof typeof serverLimits]: number };
