import { status, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import type { ProduceResult } from './client.js';
import { fromServiceError, RpcError } from './errors.js';
import { preEncodeProduceRequest, type ProduceRequestObject } from '../server/proto/load.js';
import { request_buffers } from '../server/rpc/prefixed-send.js';

interface Waiting {
  topic: string;
  partition: number;
  resolve: (r: ProduceResult) => void;
  reject: (err: unknown) => void;
  /** The request's pooled buffer (preEncodeProduceRequest), given back when its answer comes. */
  pooled: Buffer | null;
}

/** Opens a ProducePipeline stream for a record set to `topic/partition` (at its leader, on a cluster). */
export type OpenPipeline = (topic: string, partition: number) => { stream: ClientDuplexStream<object, ProduceResult>; address: string };

/**
 * The client end of ProducePipeline: record sets go out on one stream, so the server appends them
 * in send order, and answers come back in the same order. When the stream fails, the set whose
 * answer was due gets the server's error; the sets behind it get a retriable ABORTED error (they
 * may or may not have been appended). The next send opens a fresh stream (on a cluster, at the
 * leader that the failure named: `on_error` lets the client learn it).
 */
export class ProducePipeline {
  private stream: ClientDuplexStream<object, ProduceResult> | null = null;
  private address = '';
  private readonly waiting: Waiting[] = [];

  constructor(
    private readonly open: OpenPipeline,
    private readonly on_error: (topic: string, partition: number, address: string, err: Error) => void = () => undefined,
  ) {}

  get inflight(): number {
    return this.waiting.length;
  }

  send(topic: string, partition: number, records: Buffer, acks: 'all' | 'leader'): Promise<ProduceResult> {
    const stream = (this.stream ??= this.start(topic, partition));
    const req: ProduceRequestObject = { topic, partition, records, acks: acks === 'all' ? 'ACKS_ALL' : 'ACKS_LEADER' };
    const pooled = preEncodeProduceRequest(req);
    return new Promise((resolve, reject) => {
      this.waiting.push({ topic, partition, resolve, reject, pooled });
      stream.write(req);
    });
  }

  private start(topic: string, partition: number): ClientDuplexStream<object, ProduceResult> {
    const { stream, address } = this.open(topic, partition);
    this.address = address;
    stream.on('data', (r: ProduceResult) => {
      const w = this.waiting.shift();
      if (w === undefined) return;
      if (w.pooled !== null) request_buffers.give(w.pooled);
      w.resolve(r);
    });
    stream.on('error', (err: ServiceError) => this.reset(stream, fromServiceError(err, address)));
    stream.on('end', () => this.reset(stream, new RpcError('ABORTED', status.ABORTED, 'produce pipeline ended by the server before answering', true)));
    return stream;
  }

  private reset(stream: ClientDuplexStream<object, ProduceResult>, err: Error): void {
    if (this.stream !== stream) return;
    this.stream = null;
    const [head, ...rest] = this.waiting.splice(0);
    if (head) this.on_error(head.topic, head.partition, this.address, err);
    head?.reject(err);
    const behind = new RpcError('ABORTED', status.ABORTED, `produce pipeline reset by an earlier failure (${err.message})`, true);
    for (const w of rest) w.reject(behind);
  }

  /** Ends the stream once every answer is in (call after the last send has settled). */
  end(): void {
    this.stream?.end();
    this.stream = null;
  }
}
