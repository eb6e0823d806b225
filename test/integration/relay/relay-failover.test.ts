import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RelaylogClient, type PartitionInfo } from '../../../client/index.js';
import { encodeBatch } from '../../../engine/index.js';
import { assertFreshBuild, startServer, type ServerProcess } from '../../support/server-process.js';
import { tempDir } from '../../support/tmp.js';

/*
 * Relay upstream failover and failback, a gap reported instead of skipped, a gap that an origin's
 * archive tier fills, and the Prometheus metrics a relay tree is watched with. Real processes on
 * loopback.
 */

const T0 = Math.floor(Date.now() / 1000) * 1000 - 3600_000;
const batch = (from: number, n: number, value_bytes = 100) =>
  encodeBatch(Array.from({ length: n }, (_, i) => ({ value: Buffer.alloc(value_bytes, `v${from + i}`), timestamp_ms: T0 + from + i })));

/** Polls (bounded) until `pred` holds for the relay's partition 0 of `topic`. */
async function until(address: string, topic: string, pred: (p: PartitionInfo) => boolean, what: string, timeout_ms = 20_000): Promise<PartitionInfo> {
  const c = new RelaylogClient(address, { deadline_ms: 2000 });
  const stop = Date.now() + timeout_ms;
  let last: PartitionInfo | null = null;
  try {
    while (Date.now() < stop) {
      try {
        last = (await c.describeTopic(topic)).partitions[0]!;
        if (pred(last)) return last;
      } catch {
        // not there yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    c.close();
  }
  throw new Error(`${address}: ${what} did not happen; last state ${JSON.stringify(last)}`);
}

beforeAll(() => assertFreshBuild());

describe('relay failover, gaps and metrics', () => {
  const tmp = tempDir('relaylog-relayfo-');
  const procs: ServerProcess[] = [];
  const start = async (name: string, opts: Parameters<typeof startServer>[1] = {}) => {
    const p = await startServer(join(tmp.dir, name), opts);
    procs.push(p);
    return p;
  };

  afterAll(async () => {
    for (const p of procs) await p.stop('SIGKILL');
    tmp.cleanup();
  });

  test('a relay fails over to its second upstream when the first dies, and back when it returns', async () => {
    const origin = await start('origin');
    const oc = new RelaylogClient(origin.address);
    await oc.createTopic('t');
    let a = await start('a', { command: 'relay', extra_args: ['--upstream', origin.address] });
    const b = await start('b', { command: 'relay', extra_args: ['--upstream', origin.address] });
    const leaf = await start('leaf', { command: 'relay', extra_args: ['--upstream', `${a.address},${b.address}`, '--failback', '1000'] });
    for (let i = 0; i < 10; i++) await oc.produce('t', 0, batch(i * 10, 10));
    await until(leaf.address, 't', (p) => p.high_watermark === 100 && p.upstream === a.address, 'following a');

    await a.stop('SIGKILL');
    for (let i = 10; i < 20; i++) await oc.produce('t', 0, batch(i * 10, 10));
    await until(leaf.address, 't', (p) => p.high_watermark === 200 && p.upstream === b.address && p.relay_state === 'following', 'failover to b');

    a = await start('a', { command: 'relay', extra_args: ['--upstream', origin.address], listen: a.address });
    for (let i = 20; i < 30; i++) await oc.produce('t', 0, batch(i * 10, 10));
    const back = await until(leaf.address, 't', (p) => p.upstream === a.address && p.high_watermark === 300, 'failback to a');
    expect(back.lag_offsets).toBe(0);
    expect(procs.find((p) => p.address === leaf.address)!.stderr()).toMatch(/failing over/);
    oc.close();
  });

  test('a relay whose upstream deleted what it needs reports a gap and does not skip it; an origin archive fills it', async () => {
    for (const archive of [false, true]) {
      const name = archive ? 'arch' : 'plain';
      const archive_args = archive ? ['--archive', `file://${join(tmp.dir, `${name}-archive`)}`, '--archive-interval', '200'] : [];
      const origin = await start(`${name}-origin`, { extra_args: ['--retention-interval', '200', ...archive_args] });
      const oc = new RelaylogClient(origin.address);
      // Small segments, SSD retention of ~2 segments; with an archive, total retention is the default (7 days).
      await oc.createTopic('t', { config: archive ? { 'segment.bytes': String(16 * 1024), 'local.retention.bytes': String(32 * 1024) } : { 'segment.bytes': String(16 * 1024), 'retention.bytes': String(32 * 1024) } });
      let relay = await start(`${name}-relay`, { command: 'relay', extra_args: ['--upstream', origin.address] });
      for (let i = 0; i < 5; i++) await oc.produce('t', 0, batch(i * 10, 10));
      await until(relay.address, 't', (p) => p.high_watermark === 50, 'first copy');
      const relay_addr = relay.address;
      await relay.stop('SIGKILL');
      // While the relay is down the origin writes on and retention deletes what the relay has not seen.
      for (let i = 5; i < 200; i++) await oc.produce('t', 0, batch(i * 10, 10));
      await until(origin.address, 't', (p) => (archive ? p.ssd_bytes < 64 * 1024 && p.archived_segment_count > 0 : p.log_start_offset > 50), 'origin retention');
      relay = await start(`${name}-relay`, { command: 'relay', extra_args: ['--upstream', origin.address], listen: relay_addr });
      if (archive) {
        // The origin serves the deleted range from its archive: the relay just catches up.
        const p = await until(relay.address, 't', (x) => x.high_watermark === 2000, 'catch-up through the archive');
        expect(p.relay_state).toBe('following');
        expect(p.log_start_offset).toBe(0);
      } else {
        const p = await until(relay.address, 't', (x) => x.relay_state === 'gap', 'gap reported');
        expect(p.high_watermark).toBe(50); // nothing skipped
        expect(p.relay_detail).toMatch(/offsets 50\.\.\d+ are gone upstream/);
        expect(relay.stderr()).toMatch(/"state":"gap"/);
      }
      oc.close();
    }
  });

  test('Prometheus metrics: origin egress, relay lag and gap, per partition', async () => {
    const origin = await start('m-origin', { extra_args: ['--metrics', '127.0.0.1:0'] });
    const relay = await start('m-relay', { command: 'relay', extra_args: ['--upstream', origin.address, '--metrics', '127.0.0.1:0'] });
    const oc = new RelaylogClient(origin.address);
    await oc.createTopic('t');
    for (let i = 0; i < 10; i++) await oc.produce('t', 0, batch(i * 10, 10, 1000));
    await until(relay.address, 't', (p) => p.high_watermark === 100, 'copy');
    const scrape = async (p: ServerProcess) => {
      const url = /relaylog metrics on (\S+)/.exec(p.stdout())![1]!;
      const res = await fetch(url);
      expect(res.status).toBe(200);
      return res.text();
    };
    const om = await scrape(origin);
    const sent = Number(/^relaylog_bytes_out_total\{rpc="subscribe"\} (\d+)/m.exec(om)?.[1]);
    const produced = Number(/^relaylog_bytes_in_total (\d+)/m.exec(om)?.[1]);
    expect(produced).toBeGreaterThan(100 * 1000);
    expect(sent).toBe(produced); // the one relay got every byte once
    expect(om).toMatch(/^relaylog_high_watermark\{topic="t",partition="0"\} 100$/m);
    const rm = await scrape(relay);
    expect(rm).toMatch(new RegExp(`^relaylog_relay_lag_offsets\\{topic="t",partition="0",upstream="${origin.address}"\\} 0$`, 'm'));
    expect(rm).toMatch(/^relaylog_relay_gap\{topic="t",partition="0",upstream="[^"]+"\} 0$/m);
    oc.close();
  });

  test('a consumer that stops reading at a relay slows neither the relay\'s pull nor other consumers', async () => {
    const origin = await start('bp-origin');
    const relay = await start('bp-relay', { command: 'relay', extra_args: ['--upstream', origin.address] });
    const oc = new RelaylogClient(origin.address);
    await oc.createTopic('t');
    await until(relay.address, 't', (p) => p.relay_state === 'following', 'discovery');
    // A consumer that subscribes and then never reads: HTTP/2 flow control stops its stream only.
    const stuck_client = new RelaylogClient(relay.address);
    const stuck = stuck_client.subscribe('t', 0, { offset: 0 }, 1024 * 1024);
    let stuck_bytes = 0;
    stuck.on('data', (f: { records: Buffer }) => {
      stuck_bytes += f.records.length;
      stuck.pause();
    });
    stuck.on('error', () => undefined);
    const N = 400; // 400 batches of 10 x 5 KB: 20 MB, far beyond every window on the way
    for (let i = 0; i < N; i++) await oc.produce('t', 0, batch(i * 10, 10, 5000));
    const p = await until(relay.address, 't', (x) => x.high_watermark === N * 10, 'relay caught up while a consumer is stuck');
    expect(p.lag_offsets).toBe(0);
    // Another consumer at the relay reads everything.
    const fast = new RelaylogClient(relay.address);
    let got = 0;
    for (let o = 0; o < N * 10; ) {
      const r = await fast.fetch('t', 0, o, 4 * 1024 * 1024);
      got += r.records.length;
      o = r.next_offset;
    }
    expect(got).toBeGreaterThan(N * 10 * 5000);
    expect(stuck_bytes).toBeLessThan(got / 2); // the stuck one really is stuck
    stuck.cancel();
    stuck_client.close();
    fast.close();
    oc.close();
  });

  test('a topic deleted and re-created upstream replaces the relay copy instead of mixing the two', async () => {
    const origin = await start('rc-origin');
    const relay = await start('rc-relay', { command: 'relay', extra_args: ['--upstream', origin.address] });
    const oc = new RelaylogClient(origin.address);
    await oc.createTopic('t');
    for (let i = 0; i < 10; i++) await oc.produce('t', 0, batch(i * 10, 10));
    await until(relay.address, 't', (p) => p.high_watermark === 100, 'first copy');
    await oc.deleteTopic('t');
    await new Promise((r) => setTimeout(r, 5)); // distinct creation times
    await oc.createTopic('t');
    for (let i = 0; i < 3; i++) await oc.produce('t', 0, batch(1000 + i * 10, 10));
    await until(relay.address, 't', (p) => p.high_watermark === 30 && p.relay_state === 'following', 'the new topic copied');
    const rc = new RelaylogClient(relay.address);
    const first = await rc.fetch('t', 0, 0, 1 << 20);
    const origin_first = await oc.fetch('t', 0, 0, 1 << 20);
    expect(Buffer.from(first.records).equals(Buffer.from(origin_first.records))).toBe(true);
    expect((await rc.describeTopic('t')).created_ms).toBe((await oc.describeTopic('t')).created_ms);
    rc.close();
    oc.close();
  });
});
