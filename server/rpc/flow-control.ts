import type { Http2Server, ServerHttp2Session } from 'node:http2';
import type { Server } from '@grpc/grpc-js';

/**
 * HTTP/2 receive windows for the server's side of every connection.
 *
 * grpc-js (1.14) gives its server no way to set them, so a connection and each of its streams start
 * with HTTP/2's default 64 KiB: a producer sending a 1 MiB batch stops sixteen times to wait for
 * a WINDOW_UPDATE. Measured with `BENCH_PHASE=produce BENCH_RECORD_BYTES=65536 node
 * dist/bench/e2e/replay-profile.js`: 58 MB/s at 12.6 ms of server CPU per MB with the defaults, 95
 * MB/s at 9.0 ms/MB with these windows (the client's CPU per MB fell from 10.3 to 6.3 ms). The
 * client sets the same windows for what it receives (client/client.ts).
 *
 * Memory: a connection's unread bytes are bounded by the connection window (16 MiB), whatever the
 * number of its streams.
 */
export const RECEIVE_WINDOW_BYTES = 16 * 1024 * 1024;

/**
 * Widens the receive windows of every connection the server accepts from now on. Call it after
 * bindAsync (grpc-js creates its HTTP/2 servers there). Returns false when this grpc-js keeps its
 * HTTP/2 servers elsewhere; the server then works with the default windows, only slower.
 */
export function widenReceiveWindows(server: Server, window_bytes = RECEIVE_WINDOW_BYTES): boolean {
  // A private field of grpc-js's Server: the HTTP/2 servers it listens with.
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map) || servers.size === 0) return false;
  for (const h of servers.keys() as IterableIterator<Http2Server>) {
    h.on('session', (session: ServerHttp2Session) => {
      try {
        session.settings({ initialWindowSize: window_bytes }); // each stream's window
        session.setLocalWindowSize(window_bytes); // the connection's
      } catch {
        // A session that is already closing keeps the default windows; nothing is lost.
      }
    });
  }
  return true;
}
