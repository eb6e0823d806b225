import type { ApiCodec } from './api.js';
import { apiVersions, type ApiVersionRange } from './api-versions.js';
import { createTopics } from './create-topics.js';
import { fetch } from './fetch.js';
import { findCoordinator } from './find-coordinator.js';
import { heartbeat } from './heartbeat.js';
import { initProducerId } from './init-producer-id.js';
import { joinGroup } from './join-group.js';
import { leaveGroup } from './leave-group.js';
import { listOffsets } from './list-offsets.js';
import { metadata } from './metadata.js';
import { offsetCommit } from './offset-commit.js';
import { offsetFetch } from './offset-fetch.js';
import { produce } from './produce.js';
import { syncGroup } from './sync-group.js';

/** Every API the listener serves. Its versions are exactly what ApiVersions advertises. */
export const CODECS = [produce, fetch, listOffsets, metadata, offsetCommit, offsetFetch, findCoordinator, joinGroup, heartbeat, leaveGroup, syncGroup, apiVersions, createTopics, initProducerId] as const;

export type AnyCodec = ApiCodec<any, any>;

const BY_KEY = new Map<number, AnyCodec>(CODECS.map((c) => [c.key, c]));

export function codecFor(api_key: number): AnyCodec | undefined {
  return BY_KEY.get(api_key);
}

/** The ApiVersions table, sorted by key. */
export function advertisedVersions(): ApiVersionRange[] {
  return [...CODECS].sort((a, b) => a.key - b.key).map((c) => ({ api_key: c.key, min_version: c.min_version, max_version: c.max_version }));
}
