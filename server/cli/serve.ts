import { format } from 'node:util';
import { setLogger } from '@grpc/grpc-js';
import { pino } from 'pino';
import { LogServer } from '../rpc/log-server.js';

export interface ServeOptions {
  data: string;
  listen: string;
  archive?: string;
  archiveInterval: number;
  retentionInterval: number;
  /** Relays keep their copies byte-identical to the upstream's: they do not compact (0). */
  compactionInterval?: number;
  metrics?: string;
  kafkaListen?: string;
  kafkaAdvertised?: string;
  memory: number;
  logLevel: string;
  relay?: { upstreams: string[]; topics?: RegExp; failback_ms?: number };
}

/**
 * `relaylog serve`: opens the data dir, listens, and prints `relaylog listening on HOST:PORT` as
 * one stdout line (scripts and tests read the real port from it when started with port 0). Logs
 * are pino JSON on stderr. SIGTERM/SIGINT stop accepting, drain in-flight produces, close the
 * store (fsync, lock release) and exit 0; a second signal while stopping exits 1 at once.
 */
export async function serve(o: ServeOptions): Promise<void> {
  const logger = pino({ base: { service: 'relaylog' }, level: o.logLevel }, pino.destination({ dest: 2, sync: true }));
  // grpc-js's own diagnostics go to the same JSON log, not as bare lines on stderr.
  setLogger({ error: (...args: unknown[]) => logger.warn({ grpc: format(...args) }, 'grpc-js') });
  const server = await LogServer.start({
    store: { dir: o.data, memory_tier_bytes: o.memory, archive_interval_ms: o.archiveInterval, retention_check_interval_ms: o.retentionInterval, compaction_interval_ms: o.relay ? 0 : (o.compactionInterval ?? 60_000), ...(o.archive ? { archive_url: o.archive } : {}) },
    listen: o.listen,
    logger,
    ...(o.relay ? { relay: o.relay } : {}),
    ...(o.metrics !== undefined ? { metrics_listen: o.metrics } : {}),
    ...(o.kafkaListen !== undefined ? { kafka_listen: o.kafkaListen } : {}),
    ...(o.kafkaAdvertised !== undefined ? { kafka_advertised: o.kafkaAdvertised } : {}),
  });
  process.stdout.write(`relaylog listening on ${server.address}\n`);
  if (server.metricsAddress) process.stdout.write(`relaylog metrics on http://${server.metricsAddress}/metrics\n`);
  if (server.kafkaAddress) process.stdout.write(`relaylog kafka listening on ${server.kafkaAddress}\n`);
  logger.info({ address: server.address, data: o.data, archive: o.archive ?? null, relay_of: o.relay?.upstreams ?? null }, 'serving');
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal while stopping: exiting without a clean close');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'stopping: no new calls, draining in-flight produces, closing the store');
    server.stop().then(
      () => {
        logger.info({}, 'stopped cleanly');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err: (err as Error).message }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
