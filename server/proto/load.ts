import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ServiceDefinition } from '@grpc/grpc-js';
import protobuf from 'protobufjs';

/**
 * Loads relaylog.proto at runtime with protobufjs and turns each service into a grpc-js
 * ServiceDefinition (what @grpc/proto-loader would do): the one place that knows how messages are
 * (de)serialized. int64 fields come out as JS numbers (offsets and timestamps stay below 2^53; a
 * larger value loses precision and is then refused by range checks), enums as their names, bytes
 * as Buffers that are views into the received message (no copy), and a set oneof names its member
 * in a virtual field (`start: 'offset'`).
 */
// Beside this file when run from source; from dist/server/proto/ the .proto stays in server/proto/.
const PROTO_PATH = [new URL('./relaylog.proto', import.meta.url), new URL('../../../server/proto/relaylog.proto', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((p) => existsSync(p));
if (PROTO_PATH === undefined) throw new Error('relaylog.proto not found beside server/proto/load.ts');

export const protoRoot = new protobuf.Root().loadSync(PROTO_PATH, { keepCase: true });
const CONVERT: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, oneofs: true };

/**
 * What a request deserializer returns for bytes that are not a valid message: the handler answers
 * INVALID_ARGUMENT (grpc-js would answer INTERNAL if the deserializer threw).
 */
export interface MalformedRequest {
  malformed: string;
}
export const isMalformed = (v: unknown): v is MalformedRequest =>
  typeof v === 'object' && v !== null && typeof (v as { malformed?: unknown }).malformed === 'string' && Object.keys(v).length === 1;

export function messageType(name: string): protobuf.Type {
  return protoRoot.lookupType(`relaylog.v1.${name}`);
}

/** Encodes a plain object (enums by name or number) as message `type`. */
export function encodeMessage(type: protobuf.Type, v: object): Buffer {
  return asBuffer(type.encode(type.fromObject(v)).finish());
}

/** Decodes bytes of message `type` into a plain object (see CONVERT above). Throws on malformed input. */
export function decodeMessage(type: protobuf.Type, b: Uint8Array): Record<string, unknown> {
  return type.toObject(type.decode(b), CONVERT);
}

function decodeRequest(type: protobuf.Type, b: Buffer): unknown {
  try {
    return decodeMessage(type, b);
  } catch (err) {
    return { malformed: `malformed ${type.name}: ${(err as Error).message}` } satisfies MalformedRequest;
  }
}

function definition(service: string): ServiceDefinition {
  const svc = protoRoot.lookupService(`relaylog.v1.${service}`);
  const def: Record<string, unknown> = {};
  for (const m of svc.methodsArray) {
    m.resolve();
    const req = m.resolvedRequestType!;
    const res = m.resolvedResponseType!;
    def[m.name] = {
      path: `/relaylog.v1.${service}/${m.name}`,
      requestStream: !!m.requestStream,
      responseStream: !!m.responseStream,
      requestSerialize: (v: object) => encodeMessage(req, v),
      requestDeserialize: (b: Buffer) => decodeRequest(req, b),
      responseSerialize: (v: object) => encodeMessage(res, v),
      responseDeserialize: (b: Buffer) => decodeMessage(res, b),
      originalName: m.name,
    };
  }
  return def as unknown as ServiceDefinition;
}

const asBuffer = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.length));

export const AdminService = definition('Admin');
export const LogService = definition('Log');
/** Node-to-node Raft traffic of a cluster (replication/raft/transport). */
export const RaftService = definition('Raft');
