import type { ApiCodec } from './api.js';
import { ApiKey } from './api.js';

/*
 * InitProducerId (key 22), versions 0-1 (v2+ are flexible versions, not served).
 *
 * Request v0-v1:
 *   transactional_id          NULLABLE_STRING   null: an idempotent producer (the only kind served)
 *   transaction_timeout_ms    INT32
 *
 * Response v0-v1:
 *   throttle_time_ms          INT32
 *   error_code                INT16
 *   producer_id               INT64     -1 on error
 *   producer_epoch            INT16     -1 on error
 */
export interface InitProducerIdRequest {
  transactional_id: string | null;
  transaction_timeout_ms: number;
}

export interface InitProducerIdResponse {
  throttle_time_ms: number;
  error_code: number;
  producer_id: number;
  producer_epoch: number;
}

export const initProducerId: ApiCodec<InitProducerIdRequest, InitProducerIdResponse> = {
  key: ApiKey.InitProducerId,
  name: 'InitProducerId',
  min_version: 0,
  max_version: 1,
  decodeRequest: (d) => ({ transactional_id: d.nullableString(), transaction_timeout_ms: d.int32() }),
  encodeRequest(e, _v, r) {
    e.nullableString(r.transactional_id).int32(r.transaction_timeout_ms);
  },
  decodeResponse: (d) => ({ throttle_time_ms: d.int32(), error_code: d.int16(), producer_id: d.int64(), producer_epoch: d.int16() }),
  encodeResponse(e, _v, r) {
    e.int32(r.throttle_time_ms).int16(r.error_code).int64(r.producer_id).int16(r.producer_epoch);
  },
};
