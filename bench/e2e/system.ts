/**
 * The one interface every log server in the end-to-end benchmarks is driven through, so that each
 * scenario runs the same Node harness against relaylog and its peers.
 */
export interface LogSystem {
  readonly name: string;
  /** What an acknowledged produce survives on this system, in plain words. */
  readonly durability: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  createTopic(topic: string): Promise<void>;
  /**
   * Produces `count` records of `value`-sized payloads as fast as the system allows (batched or
   * pipelined as its client does best); resolves when every record is acknowledged.
   */
  produceBulk(topic: string, count: number, value: Buffer): Promise<void>;
  /** Produces one record and resolves at its acknowledgement. */
  produceOne(topic: string, value: Buffer): Promise<void>;
  /** Reads `count` records from the start; resolves with the payload bytes read. */
  replay(topic: string, count: number): Promise<number>;
  /**
   * Reads `count` records from the first one stamped at or after `timestamp_ms` (wall clock, ms;
   * every system here stamps records with the time it takes them in, on this machine's clock);
   * resolves with the payload bytes read. Throws if a record before `timestamp_ms` is delivered.
   */
  replayFrom(topic: string, timestamp_ms: number, count: number): Promise<number>;
  /**
   * Follows the topic from its end as of this call (records produced after it resolves are all
   * delivered), calling onValue for each record; returns a stop function. Each tail is its own
   * consumer (its own connection where the system's client needs one per reader).
   */
  tail(topic: string, onValue: (value: Buffer) => void): Promise<() => Promise<void>>;
  /** Server processes' CPU time so far (user+system ms), for CPU-per-MB figures. */
  serverCpuMs(): number;
}
