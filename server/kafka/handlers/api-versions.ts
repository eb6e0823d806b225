import { KafkaCode } from '../errors.js';
import { apiVersions, type ApiVersionsRequest, type ApiVersionsResponse } from '../protocol/api-versions.js';
import { advertisedVersions } from '../protocol/registry.js';
import type { KafkaContext, RequestContext } from '../context.js';
import { route } from './handler.js';

/** The table of every API and version range served (see registry.ts). */
export function apiVersionsResponse(error_code: number): ApiVersionsResponse {
  return { error_code, api_keys: advertisedVersions(), throttle_time_ms: 0 };
}

async function handleApiVersions(_ctx: KafkaContext, _rc: RequestContext, _version: number, _req: ApiVersionsRequest): Promise<ApiVersionsResponse> {
  return apiVersionsResponse(KafkaCode.NONE);
}

export const apiVersionsRoute = route(apiVersions, handleApiVersions);
