import type { ApiCodec } from './api.js';
import { ApiKey } from './api.js';

/*
 * Metadata (key 3), versions 0-7.
 *
 * Request v0:
 *   topics                    ARRAY of              (empty = every topic in v0)
 *     name                    STRING
 * Request v1-v3: topics is a NULLABLE ARRAY (null = every topic, empty = none)
 * Request v4-v7: as v1, then
 *   allow_auto_topic_creation BOOLEAN
 *
 * Response v0:
 *   brokers                   ARRAY of
 *     node_id                 INT32
 *     host                    STRING
 *     port                    INT32
 *   topics                    ARRAY of
 *     error_code              INT16
 *     name                    STRING
 *     partitions              ARRAY of
 *       error_code            INT16
 *       partition_index       INT32
 *       leader_id             INT32
 *       replica_nodes         ARRAY of INT32
 *       isr_nodes             ARRAY of INT32
 * Response v1: brokers gain  rack NULLABLE_STRING (after port);
 *              after brokers  controller_id INT32;
 *              topics gain    is_internal BOOLEAN (after name)
 * Response v2: cluster_id NULLABLE_STRING between brokers and controller_id
 * Response v3-v4: throttle_time_ms INT32 first
 * Response v5-v6: partitions gain offline_replicas ARRAY of INT32 (after isr_nodes)
 * Response v7: partitions gain leader_epoch INT32 (after leader_id)
 */
export interface MetadataRequest {
  /** null = every topic (v0 sends an empty array for that; the decoder turns it into null). */
  topics: string[] | null;
  allow_auto_topic_creation: boolean;
}

export interface MetadataBroker {
  node_id: number;
  host: string;
  port: number;
  rack: string | null;
}

export interface MetadataPartition {
  error_code: number;
  partition_index: number;
  leader_id: number;
  leader_epoch: number;
  replica_nodes: number[];
  isr_nodes: number[];
  offline_replicas: number[];
}

export interface MetadataTopic {
  error_code: number;
  name: string;
  is_internal: boolean;
  partitions: MetadataPartition[];
}

export interface MetadataResponse {
  throttle_time_ms: number;
  brokers: MetadataBroker[];
  cluster_id: string | null;
  controller_id: number;
  topics: MetadataTopic[];
}

export const metadata: ApiCodec<MetadataRequest, MetadataResponse> = {
  key: ApiKey.Metadata,
  name: 'Metadata',
  min_version: 0,
  max_version: 7,
  decodeRequest(d, v) {
    let topics = d.nullableArray((d) => d.string());
    if (v === 0 && topics !== null && topics.length === 0) topics = null;
    return { topics, allow_auto_topic_creation: v >= 4 ? d.bool() : true };
  },
  encodeRequest(e, v, r) {
    if (v === 0) e.array(r.topics ?? [], (e, t) => e.string(t));
    else e.nullableArray(r.topics, (e, t) => e.string(t));
    if (v >= 4) e.bool(r.allow_auto_topic_creation);
  },
  decodeResponse(d, v) {
    const throttle_time_ms = v >= 3 ? d.int32() : 0;
    const brokers = d.array((d) => ({ node_id: d.int32(), host: d.string(), port: d.int32(), rack: v >= 1 ? d.nullableString() : null }));
    const cluster_id = v >= 2 ? d.nullableString() : null;
    const controller_id = v >= 1 ? d.int32() : -1;
    const topics = d.array((d) => ({
      error_code: d.int16(),
      name: d.string(),
      is_internal: v >= 1 ? d.bool() : false,
      partitions: d.array((d) => ({
        error_code: d.int16(),
        partition_index: d.int32(),
        leader_id: d.int32(),
        leader_epoch: v >= 7 ? d.int32() : -1,
        replica_nodes: d.int32Array(),
        isr_nodes: d.int32Array(),
        offline_replicas: v >= 5 ? d.int32Array() : [],
      })),
    }));
    return { throttle_time_ms, brokers, cluster_id, controller_id, topics };
  },
  encodeResponse(e, v, r) {
    if (v >= 3) e.int32(r.throttle_time_ms);
    e.array(r.brokers, (e, b) => {
      e.int32(b.node_id).string(b.host).int32(b.port);
      if (v >= 1) e.nullableString(b.rack);
    });
    if (v >= 2) e.nullableString(r.cluster_id);
    if (v >= 1) e.int32(r.controller_id);
    e.array(r.topics, (e, t) => {
      e.int16(t.error_code).string(t.name);
      if (v >= 1) e.bool(t.is_internal);
      e.array(t.partitions, (e, p) => {
        e.int16(p.error_code).int32(p.partition_index).int32(p.leader_id);
        if (v >= 7) e.int32(p.leader_epoch);
        e.int32Array(p.replica_nodes).int32Array(p.isr_nodes);
        if (v >= 5) e.int32Array(p.offline_replicas);
      });
    });
  },
};
