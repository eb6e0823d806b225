import { connect, type Settings } from 'node:http2';
import { expect, test } from 'vitest';
import { RECEIVE_WINDOW_BYTES } from '../../../server/rpc/flow-control.js';
import { LogServer } from '../../../server/rpc/log-server.js';
import type { ServerLogger } from '../../../server/rpc/context.js';
import { tempDir } from '../../support/tmp.js';

// grpc-js gives its server no option for HTTP/2 receive windows; relaylog widens them through a
// private field of grpc-js (server/rpc/flow-control.ts). This fails if a grpc-js upgrade moves it.
test('the server announces 16 MiB HTTP/2 receive windows, so a producer need not stop every 64 KiB', async () => {
  const tmp = tempDir('relaylog-window-');
  const warnings: string[] = [];
  const logger: ServerLogger = { debug: () => undefined, info: () => undefined, warn: (_o, m) => warnings.push(m), error: () => undefined };
  const server = await LogServer.start({ store: { dir: tmp.dir, disk_free_floor_bytes: 0 }, listen: '127.0.0.1:0', logger });
  const session = connect(`http://${server.address}`);
  try {
    const settings = await new Promise<Settings>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no SETTINGS with a widened window from the server within 10 s')), 10_000);
      const check = () => {
        if (session.remoteSettings.initialWindowSize === RECEIVE_WINDOW_BYTES) {
          clearTimeout(timer);
          resolve(session.remoteSettings);
        }
      };
      session.on('remoteSettings', check);
      session.on('error', reject);
    });
    expect(settings.initialWindowSize).toBe(16 * 1024 * 1024);
    // The connection-level window: the server's WINDOW_UPDATE on stream 0 raises what we may send.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connection window stayed at ${session.state.remoteWindowSize}`)), 10_000);
      const poll = setInterval(() => {
        if ((session.state.remoteWindowSize ?? 0) >= RECEIVE_WINDOW_BYTES) {
          clearInterval(poll);
          clearTimeout(timer);
          resolve();
        }
      }, 20);
    });
    expect(warnings).toEqual([]);
  } finally {
    session.close();
    await server.stop();
    tmp.cleanup();
  }
});
