/**
 * The server side of service Raft (server/proto/relaylog.proto), registered on a cluster node's
 * gRPC server next to Admin and Log: Step streams from peers feed the partitions' drivers; the
 * unary calls create, delete and list topic incarnations for topic membership across nodes.
 */
import { Metadata, status, type sendUnaryData, type ServerReadableStream, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { invalidArgument, isEngineError } from '../../../engine/base/errors.js';
import type { ClusterNode, TopicReplica } from '../node/cluster-node.js';

interface Logger {
  warn(obj: object, msg: string): void;
}

const CODE_TRAILER = 'relaylog-code';

function serviceError(err: unknown): { code: number; details: string; metadata: Metadata } {
  const metadata = new Metadata();
  if (isEngineError(err)) {
    metadata.set(CODE_TRAILER, err.code);
    return { code: err.grpc_status, details: err.message, metadata };
  }
  return { code: status.INTERNAL, details: `internal error: ${(err as Error)?.message ?? String(err)}`, metadata };
}

const unavailable = (why: string) => ({ code: status.UNAVAILABLE, details: why, metadata: new Metadata() });

function parseReplica(raw: unknown): TopicReplica | null {
  const r = raw as Record<string, unknown> | null;
  if (r === null || typeof r !== 'object' || typeof r.name !== 'string' || r.name === '') return null;
  if (typeof r.created_ms !== 'number' || typeof r.partitions !== 'number') return null;
  const config = (r.config ?? {}) as Record<string, string>;
  const replicas = Array.isArray(r.replicas) ? r.replicas.filter((id): id is number => Number.isSafeInteger(id) && (id as number) > 0) : [];
  return { name: r.name, config, created_ms: r.created_ms, partitions: r.partitions, ...(replicas.length > 0 ? { replicas } : {}) };
}

export function raftService(cluster: ClusterNode, stopping: AbortSignal, logger: Logger): UntypedServiceImplementation {
  const unary =
    (fn: (req: unknown) => Promise<object> | object) =>
    (call: ServerUnaryCall<unknown, object>, callback: sendUnaryData<object>): void => {
      if (stopping.aborted || cluster.isStopped) return callback(unavailable('node is stopping'), null);
      Promise.resolve()
        .then(() => fn(call.request))
        .then(
          (res) => callback(null, res),
          (err: unknown) => {
            if (!isEngineError(err)) logger.warn({ err: (err as Error)?.message }, 'raft: cluster call failed');
            callback(serviceError(err), null);
          },
        );
    };
  const replica = (raw: unknown): TopicReplica => {
    const t = parseReplica(raw);
    if (t === null) throw invalidArgument('malformed TopicReplica: name, created_ms and partitions are required');
    return t;
  };
  return {
    Step: (call: ServerReadableStream<unknown, object>, callback: sendUnaryData<object>): void => {
      let done = false;
      const finish = (err: ReturnType<typeof unavailable> | null) => {
        if (done) return;
        done = true;
        clearInterval(watch);
        callback(err, err ? null : {});
      };
      // The stream lives as long as the peer's node; it ends when this cluster node stops.
      const watch = setInterval(() => {
        if (cluster.isStopped) finish(unavailable('node is stopping'));
      }, 100);
      watch.unref();
      if (cluster.isStopped) return finish(unavailable('node is stopping'));
      call.on('data', (frame: unknown) => {
        const f = frame as { from?: unknown; to?: unknown; messages?: unknown };
        if (typeof f?.from !== 'number' || f.to !== cluster.node_id || !Array.isArray(f.messages)) return;
        cluster.deliver(f.from, f.messages);
      });
      call.on('end', () => finish(null));
      call.on('error', () => finish(null));
      call.on('cancelled', () => finish(null));
    },
    CreateTopicReplica: unary(async (raw) => {
      await cluster.ensureTopic(replica(raw));
      return {};
    }),
    DeleteTopicReplica: unary(async (raw) => {
      await cluster.dropTopic(replica(raw));
      return {};
    }),
    ListTopicReplicas: unary(() => ({ topics: cluster.listReplicas() })),
  };
}
