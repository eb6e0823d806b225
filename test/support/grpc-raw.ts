import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';

/**
 * gRPC calls with raw message bytes, bypassing the relaylog codec: what a hostile or broken client
 * can send. Resolves with the status code and details (0 = OK) and the raw response bytes.
 */
export class RawGrpc {
  private readonly client: Client;

  constructor(address: string) {
    this.client = new Client(address, credentials.createInsecure(), { 'grpc.max_send_message_length': 128 * 1024 * 1024 });
  }

  unary(path: string, body: Buffer, deadline_ms = 10_000): Promise<{ code: number; details: string; response?: Buffer; trailer_code?: string }> {
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, body, new Metadata(), { deadline: Date.now() + deadline_ms }, (err: ServiceError | null, res?: Buffer) => {
        const trailer = err?.metadata?.get('relaylog-code')[0];
        if (err) resolve({ code: err.code, details: err.details, ...(typeof trailer === 'string' ? { trailer_code: trailer } : {}) });
        else resolve({ code: 0, details: '', ...(res ? { response: res } : {}) });
      });
    });
  }

  /** A server-streaming call: collects up to `max_messages` messages, then cancels. */
  serverStream(path: string, body: Buffer, opts: { max_messages?: number; timeout_ms?: number } = {}): Promise<{ code: number; details: string; messages: Buffer[] }> {
    return new Promise((resolve) => {
      const call = this.client.makeServerStreamRequest(path, (b: Buffer) => b, (b: Buffer) => b, body, new Metadata(), {});
      const messages: Buffer[] = [];
      let done = false;
      const finish = (code: number, details: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        call.cancel();
        resolve({ code, details, messages });
      };
      const timer = setTimeout(() => finish(-1, 'timeout (stream still open)'), opts.timeout_ms ?? 1_000);
      call.on('data', (m: Buffer) => {
        messages.push(m);
        if (messages.length >= (opts.max_messages ?? Infinity)) finish(-2, 'enough messages');
      });
      call.on('error', (err: ServiceError) => finish(err.code, err.details));
      call.on('end', () => finish(0, ''));
    });
  }

  /** A client-streaming call sending each of `bodies`, then ending. */
  clientStream(path: string, bodies: Buffer[], deadline_ms = 10_000): Promise<{ code: number; details: string }> {
    return new Promise((resolve) => {
      const call = this.client.makeClientStreamRequest(path, (b: Buffer) => b, (b: Buffer) => b, new Metadata(), { deadline: Date.now() + deadline_ms }, (err: ServiceError | null) =>
        resolve(err ? { code: err.code, details: err.details } : { code: 0, details: '' }),
      );
      for (const b of bodies) call.write(b);
      call.end();
    });
  }

  close(): void {
    this.client.close();
  }
}
