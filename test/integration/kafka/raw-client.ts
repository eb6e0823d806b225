import { connect, type Socket } from 'node:net';
import type { ApiCodec } from '../../../server/kafka/protocol/api.js';
import { Decoder } from '../../../server/kafka/protocol/decoder.js';
import { Encoder } from '../../../server/kafka/protocol/encoder.js';
import { FrameReader, requestFrame } from '../../../server/kafka/protocol/frame.js';

interface Pending {
  correlation_id: number;
  decode: (d: Decoder) => unknown;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/**
 * A minimal Kafka client over a raw socket, built on the listener's own codecs (client direction):
 * for exercising every API version, pipelining, and hostile bytes. Responses are checked to
 * arrive in request order and to be consumed exactly by the version's decoder.
 */
export class RawKafkaClient {
  private readonly frames = new FrameReader(256 * 1024 * 1024, 4);
  private readonly pending: Pending[] = [];
  private next_correlation_id = 1;
  readonly closed: Promise<void>;
  private is_closed = false;
  /** Correlation ids of responses in the order they arrived. */
  readonly arrival: number[] = [];

  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.is_closed = true;
      for (const p of this.pending.splice(0)) p.reject(new Error('connection closed'));
    });
  }

  static connect(address: string): Promise<RawKafkaClient> {
    const i = address.lastIndexOf(':');
    const socket = connect({ host: address.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(address.slice(i + 1)) });
    return new Promise((resolve, reject) => {
      socket.once('connect', () => resolve(new RawKafkaClient(socket)));
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.is_closed;
  }

  /** Sends one request; resolves with its decoded response (never for acks=0 produces: use `write`). */
  send<Req, Res>(codec: ApiCodec<Req, Res>, version: number, req: Req, client_id: string | null = 'raw'): Promise<Res> {
    const correlation_id = this.next_correlation_id++;
    const body = new Encoder();
    codec.encodeRequest(body, version, req);
    const p = new Promise<Res>((resolve, reject) =>
      this.pending.push({ correlation_id, decode: (d) => codec.decodeResponse(d, version), resolve: resolve as (v: unknown) => void, reject }),
    );
    this.socket.write(Buffer.concat(requestFrame({ api_key: codec.key, api_version: version, correlation_id, client_id }, body)));
    return p;
  }

  /** Sends a request for which no response is expected (Produce with acks=0). */
  sendNoResponse<Req>(codec: ApiCodec<Req, unknown>, version: number, req: Req): void {
    const body = new Encoder();
    codec.encodeRequest(body, version, req);
    this.socket.write(Buffer.concat(requestFrame({ api_key: codec.key, api_version: version, correlation_id: this.next_correlation_id++, client_id: 'raw' }, body)));
  }

  /** Sends a frame with a raw header and decodes the answer with `decode`. */
  sendRaw(api_key: number, api_version: number, body: Buffer, decode: (d: Decoder) => unknown): Promise<unknown> {
    const correlation_id = this.next_correlation_id++;
    const p = new Promise<unknown>((resolve, reject) => this.pending.push({ correlation_id, decode, resolve, reject }));
    const e = new Encoder();
    e.raw(body);
    this.socket.write(Buffer.concat(requestFrame({ api_key, api_version, correlation_id, client_id: 'raw' }, e)));
    return p;
  }

  /** Expects the next response to carry `correlation_id` (for requests written by hand with `write`). */
  expectResponse(correlation_id: number, decode: (d: Decoder) => unknown): Promise<unknown> {
    this.next_correlation_id = Math.max(this.next_correlation_id, correlation_id + 1);
    return new Promise<unknown>((resolve, reject) => this.pending.push({ correlation_id, decode, resolve, reject }));
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  private onData(chunk: Buffer): void {
    this.frames.push(chunk);
    for (let f = this.frames.next(); f !== null; f = this.frames.next()) {
      const d = new Decoder(f, 1e9);
      const correlation_id = d.int32();
      this.arrival.push(correlation_id);
      const p = this.pending.shift();
      if (!p) throw new Error(`unexpected response with correlation id ${correlation_id}`);
      if (p.correlation_id !== correlation_id) {
        p.reject(new Error(`response out of order: expected correlation id ${p.correlation_id}, got ${correlation_id}`));
        continue;
      }
      try {
        const v = p.decode(d);
        d.end('response');
        p.resolve(v);
      } catch (err) {
        p.reject(err as Error);
      }
    }
  }

  close(): Promise<void> {
    this.socket.destroy();
    return this.closed;
  }
}
