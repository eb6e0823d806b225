import type { Decoder } from './decoder.js';
import type { Encoder } from './encoder.js';

/**
 * One Kafka API's codec for every version served: requests and responses in both directions (the
 * listener decodes requests and encodes responses; tests and the raw test client do the reverse).
 * Decoding turns bytes into fields and checks nothing but the layout; what the fields mean is
 * the handlers' business (decode is separate from parse).
 */
export interface ApiCodec<Req, Res> {
  readonly key: number;
  readonly name: string;
  /** Versions advertised in ApiVersions, inclusive. */
  readonly min_version: number;
  readonly max_version: number;
  decodeRequest(d: Decoder, version: number): Req;
  encodeRequest(e: Encoder, version: number, req: Req): void;
  decodeResponse(d: Decoder, version: number): Res;
  encodeResponse(e: Encoder, version: number, res: Res): void;
}

/** Kafka API keys served by the listener (Kafka protocol guide, "Api Keys"). */
export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  ApiVersions: 18,
  CreateTopics: 19,
  InitProducerId: 22,
} as const;
