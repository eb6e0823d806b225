import type { Route } from './handler.js';
import { apiVersionsRoute } from './api-versions.js';
import { createTopicsRoute } from './create-topics.js';
import { fetchRoute } from './fetch.js';
import { findCoordinatorRoute, heartbeatRoute, joinGroupRoute, leaveGroupRoute, syncGroupRoute } from './groups.js';
import { initProducerIdRoute } from './init-producer-id.js';
import { listOffsetsRoute } from './list-offsets.js';
import { metadataRoute } from './metadata.js';
import { offsetCommitRoute, offsetFetchRoute } from './offsets.js';
import { produceRoute } from './produce.js';

// Each route pairs a codec with the handler for the same request and response types; the table
// forgets the pairing, which the connection restores by always using a route's codec with its handler.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRoute = Route<any, any>;

const ROUTES: readonly AnyRoute[] = [
  apiVersionsRoute,
  metadataRoute,
  produceRoute,
  fetchRoute,
  listOffsetsRoute,
  findCoordinatorRoute,
  joinGroupRoute,
  syncGroupRoute,
  heartbeatRoute,
  leaveGroupRoute,
  offsetCommitRoute,
  offsetFetchRoute,
  createTopicsRoute,
  initProducerIdRoute,
];

const BY_KEY = new Map(ROUTES.map((r) => [r.codec.key, r]));

/** The handler and codec for an API key, or undefined for a key the listener does not serve. */
export function routeFor(api_key: number): AnyRoute | undefined {
  return BY_KEY.get(api_key);
}
