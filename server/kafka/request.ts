import { malformed } from './errors.js';
import { routeFor, type AnyRoute } from './handlers/routes.js';
import { ApiKey } from './protocol/api.js';
import { apiVersions } from './protocol/api-versions.js';
import { Decoder } from './protocol/decoder.js';
import { decodeRequestHeader, type RequestHeader } from './protocol/frame.js';

export type DecodedRequest =
  | { kind: 'request'; header: RequestHeader; route: AnyRoute; req: unknown }
  /** ApiVersions newer than served: answered with error 35 in the v0 layout (its body is not parsed). */
  | { kind: 'api_versions_fallback'; header: RequestHeader };

/**
 * Decodes one request frame (without its size prefix): header, then the body with the codec of
 * that API and version, consuming every byte. Pure; anything that is not a well-formed request of
 * a served API and version throws MalformedRequestError, and nothing else is thrown.
 */
export function decodeRequestFrame(frame: Buffer, array_length_max: number): DecodedRequest {
  const d = new Decoder(frame, array_length_max);
  const header = decodeRequestHeader(d);
  if (header.api_key === ApiKey.ApiVersions && header.api_version > apiVersions.max_version) return { kind: 'api_versions_fallback', header };
  const route = routeFor(header.api_key);
  if (!route) throw malformed('UNKNOWN_API_KEY', `API key ${header.api_key} is not served`, { api_key: header.api_key });
  const { codec } = route;
  if (header.api_version < codec.min_version || header.api_version > codec.max_version) {
    throw malformed('UNSUPPORTED_API_VERSION', `${codec.name} v${header.api_version} is not served (versions ${codec.min_version}-${codec.max_version})`, { api_key: header.api_key, api_version: header.api_version });
  }
  const req: unknown = codec.decodeRequest(d, header.api_version);
  d.end(`${codec.name} v${header.api_version} request`);
  return { kind: 'request', header, route, req };
}
