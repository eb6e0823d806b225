import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { LogStore } from '../engine/log/log-store.js';
import type { RelayRunner } from '../replication/relay/relay-runner.js';
import { parseListen } from './rpc/listen-address.js';

/**
 * The server's Prometheus metrics (prom-client). Counters are bumped on the hot path once per
 * frame/response (never per record); per-partition gauges are read from the store when scraped.
 * `relaylog serve|relay --metrics HOST:PORT` serves them at http://HOST:PORT/metrics.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  /** Record bytes sent to clients, by RPC (subscribe, fetch): a relay tree's origin egress. */
  readonly bytes_out = new Counter({ name: 'relaylog_bytes_out_total', help: 'Record bytes sent to clients', labelNames: ['rpc'] as const, registers: [this.registry] });
  /** Record bytes accepted from producers. */
  readonly bytes_in = new Counter({ name: 'relaylog_bytes_in_total', help: 'Record bytes appended by producers', registers: [this.registry] });
  private http: Server | null = null;

  constructor(store: () => LogStore | null, relay: () => RelayRunner | null, replay?: () => { rate: number; paced: number }) {
    collectDefaultMetrics({ register: this.registry, prefix: 'relaylog_' });
    const labels = ['topic', 'partition'] as const;
    const perPartition = (name: string, help: string, read: (s: ReturnType<LogStore['partitions']>[number]['stats'] extends () => infer S ? S : never) => number) =>
      new Gauge({
        name,
        help,
        labelNames: labels,
        registers: [this.registry],
        collect() {
          this.reset();
          const st = store();
          if (!st) return;
          for (const t of st.listTopics()) for (const p of st.partitions(t.name)) this.set({ topic: t.name, partition: String(p.partition) }, read(p.stats()));
        },
      });
    perPartition('relaylog_high_watermark', 'High watermark (next offset to be committed)', (s) => s.high_watermark);
    perPartition('relaylog_log_start_offset', 'First offset held in any tier', (s) => s.log_start_offset);
    perPartition('relaylog_ssd_bytes', 'Bytes in local segment files', (s) => s.size_bytes);
    perPartition('relaylog_memory_bytes', 'Bytes in the memory tier', (s) => s.memory_bytes);
    perPartition('relaylog_archive_bytes', 'Bytes in the archive tier', (s) => s.archive_bytes);
    if (replay) {
      new Gauge({
        name: 'relaylog_replay_pace_bytes_per_second',
        help: 'The rate catch-up Subscribe replay is held to while producers write (+Inf: not paced)',
        registers: [this.registry],
        collect() {
          this.set(replay().rate);
        },
      });
      new Counter({
        name: 'relaylog_replay_pace_waits_total',
        help: 'Times a catch-up Subscribe frame had to wait for the pacing rate',
        registers: [this.registry],
        collect() {
          this.reset();
          this.inc(replay().paced);
        },
      });
    }
    new Gauge({
      name: 'relaylog_archive_upload_failures_total',
      help: 'Failed archive uploads since start (data stays on SSD and is retried)',
      registers: [this.registry],
      collect() {
        this.set(store()?.archive?.metrics.upload_failures ?? 0);
      },
    });
    const relayGauge = (name: string, help: string, read: (s: NonNullable<ReturnType<RelayRunner['status']>>) => number) =>
      new Gauge({
        name,
        help,
        labelNames: [...labels, 'upstream'] as const,
        registers: [this.registry],
        collect() {
          this.reset();
          const st = store();
          const r = relay();
          if (!st || !r) return;
          for (const t of st.listTopics()) {
            for (const p of st.partitions(t.name)) {
              const s = r.status(t.name, p.partition);
              if (s) this.set({ topic: t.name, partition: String(p.partition), upstream: s.upstream }, read(s));
            }
          }
        },
      });
    relayGauge('relaylog_relay_lag_offsets', 'Upstream high watermark minus this relay\'s log end', (s) => s.lag_offsets);
    relayGauge('relaylog_relay_lag_ms', 'Age of the newest record copied while behind (0 when caught up)', (s) => s.lag_ms);
    relayGauge('relaylog_relay_bytes_in_total', 'Bytes copied from upstreams', (s) => s.bytes_in);
    relayGauge('relaylog_relay_gap', '1 while the relay reports a gap (its upstream deleted offsets it needs)', (s) => (s.state === 'gap' ? 1 : 0));
  }

  /** Serves GET /metrics on `listen` (HOST:PORT; port 0 picks one). Resolves with the bound address. */
  async serve(listen: string): Promise<string> {
    const { host, port } = parseListen(listen);
    this.http = createServer((req, res) => {
      if (req.method !== 'GET' || req.url !== '/metrics') {
        res.writeHead(404).end('GET /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String((err as Error).message)),
      );
    });
    await new Promise<void>((resolve, reject) => {
      this.http!.once('error', reject);
      this.http!.listen(port, host, () => resolve());
    });
    const a = this.http.address();
    return typeof a === 'object' && a ? `${host}:${a.port}` : listen;
  }

  async close(): Promise<void> {
    if (this.http) await new Promise<void>((resolve) => this.http!.close(() => resolve()));
    this.http = null;
  }
}
