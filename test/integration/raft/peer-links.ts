import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/*
 * A network the test can partition: every node reaches every other node through its own TCP
 * proxy (one per ordered pair, node i -> node j), given to node i as `--peer-dial j=127.0.0.1:P`.
 * Clients still connect to the nodes directly, at their --peers addresses.
 *
 * Cutting a link models a partition under TCP: nothing crosses it in either direction, but nothing
 * is lost either. Both sockets of every connection stop being read (the senders' writes back up in
 * the kernel, as with unacknowledged packets), bytes already read wait in the proxy, and new
 * connections are accepted but not forwarded. Healing delivers what waited, late, in order, and
 * connects what was held: the nodes see stale messages from before the partition, as they would.
 */

/** Bytes read from one side and not yet handed to the other, per direction, while a link is cut. */
const HELD_MAX_BYTES = 64 * 1024 * 1024;

interface Pair {
  readonly inbound: Socket;
  outbound: Socket | null;
  /** Bytes that arrived (or were read) while cut, per direction, delivered on heal. */
  readonly held_in: Buffer[];
  readonly held_out: Buffer[];
  /** One side closed while the link was cut: the other side learns it on heal (nothing crosses a cut). */
  broken: boolean;
}

export class TcpLink {
  private readonly pairs = new Set<Pair>();
  private is_cut = false;
  private closed = false;

  /** Where connections are forwarded (127.0.0.1:target_port); 0 until set: connections are refused. */
  target_port = 0;

  private constructor(private readonly server: Server, readonly port: number) {
    server.on('connection', (s) => this.accept(s));
  }

  /** Listens on 127.0.0.1, on a free port; forwards every connection to 127.0.0.1:`target_port`. */
  static async open(): Promise<TcpLink> {
    const server = createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return new TcpLink(server, (server.address() as AddressInfo).port);
  }

  get cut(): boolean {
    return this.is_cut;
  }

  /** Stops everything crossing the link, both ways, from now on (held, not dropped). */
  setCut(cut: boolean): void {
    if (this.closed || cut === this.is_cut) return;
    this.is_cut = cut;
    for (const p of this.pairs) {
      if (cut) {
        p.inbound.pause();
        p.outbound?.pause();
      } else {
        this.release(p);
      }
    }
  }

  private accept(inbound: Socket): void {
    if (this.closed || this.target_port === 0) return void inbound.destroy();
    const p: Pair = { inbound, outbound: null, held_in: [], held_out: [], broken: false };
    this.pairs.add(p);
    inbound.on('error', () => this.ended(p));
    inbound.on('close', () => this.ended(p));
    if (!this.is_cut) this.connect(p); // else held (paused) until heal
  }

  private connect(p: Pair): void {
    const outbound = createConnection({ host: '127.0.0.1', port: this.target_port });
    p.outbound = outbound;
    outbound.on('error', () => this.ended(p));
    outbound.on('close', () => this.ended(p));
    this.pump(p, p.inbound, outbound, p.held_in);
    this.pump(p, outbound, p.inbound, p.held_out);
    p.inbound.resume();
  }

  /** from -> to, pausing `from` while `to` is backed up or the link is cut. */
  private pump(p: Pair, from: Socket, to: Socket, held: Buffer[]): void {
    from.on('data', (d: Buffer) => {
      if (this.is_cut) {
        // Read before the pause took effect: it waits here, it does not cross.
        held.push(d);
        from.pause();
        if (held.reduce((n, b) => n + b.length, 0) > HELD_MAX_BYTES) p.broken = true; // a bound: the connection breaks on heal
        return;
      }
      if (!to.write(d)) from.pause();
    });
    to.on('drain', () => {
      if (!this.is_cut) from.resume();
    });
  }

  private release(p: Pair): void {
    if (p.broken) return this.drop(p);
    if (p.outbound === null) return this.connect(p);
    for (const [from, to, held] of [
      [p.inbound, p.outbound, p.held_in],
      [p.outbound, p.inbound, p.held_out],
    ] as const) {
      let backed_up = false;
      for (const d of held.splice(0)) backed_up = !to.write(d) || backed_up;
      if (!backed_up) from.resume();
    }
  }

  private ended(p: Pair): void {
    if (this.is_cut) p.broken = true;
    else this.drop(p);
  }

  private drop(p: Pair): void {
    if (!this.pairs.delete(p)) return;
    p.inbound.destroy();
    p.outbound?.destroy();
  }

  /** Breaks every connection and stops listening. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of [...this.pairs]) this.drop(p);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * One TcpLink per ordered pair of nodes. They listen before the cluster picks its ports (so no
 * node can be given a port a proxy took meanwhile) and learn their targets from `dialArgs`.
 */
export class PeerLinks {
  private constructor(private readonly links: Map<string, TcpLink>) {}

  static async open(node_ids: readonly number[]): Promise<PeerLinks> {
    const links = new Map<string, TcpLink>();
    try {
      for (const i of node_ids) for (const j of node_ids) if (i !== j) links.set(`${i}->${j}`, await TcpLink.open());
    } catch (err) {
      await Promise.all([...links.values()].map((l) => l.close()));
      throw err;
    }
    return new PeerLinks(links);
  }

  /** `--peer-dial` for node `id`: every other node through the link id -> j, pointed at j's address. */
  dialArgs(id: number, addresses: ReadonlyMap<number, string>): string[] {
    const dial: string[] = [];
    for (const [j, address] of addresses) {
      if (j === id) continue;
      const link = this.links.get(`${id}->${j}`);
      if (link === undefined) throw new Error(`no link from node ${id} to node ${j}`);
      link.target_port = Number(address.slice(address.lastIndexOf(':') + 1));
      dial.push(`${j}=127.0.0.1:${link.port}`);
    }
    return ['--peer-dial', dial.join(',')];
  }

  /** Cuts (or restores) both directions between `id` and every other node. */
  isolate(id: number, isolated = true): void {
    for (const [key, link] of this.links) {
      const [from, to] = key.split('->').map(Number);
      if (from === id || to === id) link.setCut(isolated);
    }
  }

  /** Restores every link. */
  healAll(): void {
    for (const link of this.links.values()) link.setCut(false);
  }

  /** Which links are cut, for failure messages. */
  describe(): string {
    return [...this.links].map(([k, l]) => `${k}${l.cut ? ' cut' : ''}`).join(', ');
  }

  async close(): Promise<void> {
    await Promise.all([...this.links.values()].map((l) => l.close()));
  }
}
