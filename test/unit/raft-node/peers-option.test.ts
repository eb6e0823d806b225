import { describe, expect, test } from 'vitest';
import { parseCluster, parseKafkaPeers, parsePeerDial } from '../../../server/cli/serve.js';

/* `relaylog serve --node-id N --peers 1=host:port,...`: what makes a node a cluster member. */

describe('--node-id / --peers', () => {
  test('absent: a single node', () => {
    expect(parseCluster(undefined, undefined)).toBeUndefined();
  });

  test('every node with its address, this one included', () => {
    const c = parseCluster(2, '1=10.0.0.1:7450, 2=10.0.0.2:7450,3=[::1]:7451', 50)!;
    expect(c.node_id).toBe(2);
    expect(c.tick_ms).toBe(50);
    expect([...c.peers]).toEqual([
      [1, '10.0.0.1:7450'],
      [2, '10.0.0.2:7450'],
      [3, '[::1]:7451'],
    ]);
  });

  test('mistakes are usage errors, named', () => {
    expect(() => parseCluster(1, undefined)).toThrow(/both --node-id and --peers/);
    expect(() => parseCluster(undefined, '1=a:1')).toThrow(/both --node-id and --peers/);
    expect(() => parseCluster(4, '1=a:1,2=b:2,3=c:3')).toThrow(/does not list this node \(--node-id 4\)/);
    expect(() => parseCluster(1, '1=a:1,1=b:2')).toThrow(/lists node 1 twice/);
    expect(() => parseCluster(1, '1=a:1,x=b:2')).toThrow(/id=host:port/);
    expect(() => parseCluster(1, '1=a:1,0=b:2')).toThrow(/positive integers/);
    expect(() => parseCluster(1, '1=a:1,2=nohost')).toThrow(/node 2: listen address must be HOST:PORT/);
    for (const f of [() => parseCluster(1, '1=a:1,1=b:2')]) expect(f).toThrow(expect.objectContaining({ name: 'UsageError' }));
  });
});

describe('--kafka-peers', () => {
  const cluster = parseCluster(1, '1=10.0.0.1:7450,2=10.0.0.2:7450,3=10.0.0.3:7450')!;

  test("each node's Kafka address, by node id", () => {
    expect([...parseKafkaPeers('1=k1:9092, 3=k3:9093', cluster)]).toEqual([
      [1, 'k1:9092'],
      [3, 'k3:9093'],
    ]);
  });

  test('only in cluster mode, only for nodes in --peers, only HOST:PORT', () => {
    expect(() => parseKafkaPeers('1=k1:9092', undefined)).toThrow(/--kafka-peers is for cluster mode/);
    expect(() => parseKafkaPeers('4=k4:9092', cluster)).toThrow(/node 4 is not in --peers/);
    expect(() => parseKafkaPeers('2=nohost', cluster)).toThrow(/node 2: listen address must be HOST:PORT/);
    expect(() => parseKafkaPeers('k1:9092', cluster)).toThrow(/id=host:port/);
    expect(() => parseKafkaPeers('2=k2:9092,2=k2:9093', cluster)).toThrow(/--kafka-peers lists node 2 twice/);
  });
});

describe('--peer-dial', () => {
  const cluster = parseCluster(1, '1=10.0.0.1:7450,2=10.0.0.2:7450,3=10.0.0.3:7450')!;

  test('where this node connects to some peers; --peers is left as it is', () => {
    expect([...parsePeerDial('2=127.0.0.1:9002, 3=[::1]:9003', cluster)]).toEqual([
      [2, '127.0.0.1:9002'],
      [3, '[::1]:9003'],
    ]);
    expect([...parsePeerDial('3=proxy:9003', cluster)]).toEqual([[3, 'proxy:9003']]);
    expect(cluster.peers.get(2)).toBe('10.0.0.2:7450');
  });

  test('only in cluster mode, only for other nodes in --peers, each once, only HOST:PORT', () => {
    expect(() => parsePeerDial('2=p:1', undefined)).toThrow(/--peer-dial is for cluster mode/);
    expect(() => parsePeerDial('4=p:1', cluster)).toThrow(/--peer-dial: node 4 is not in --peers/);
    expect(() => parsePeerDial('1=p:1', cluster)).toThrow(/node 1 is this node, which never dials itself/);
    expect(() => parsePeerDial('2=p:1,2=p:2', cluster)).toThrow(/--peer-dial lists node 2 twice/);
    expect(() => parsePeerDial('2=nohost', cluster)).toThrow(/--peer-dial: node 2: listen address must be HOST:PORT/);
    expect(() => parsePeerDial('p:1', cluster)).toThrow(/--peer-dial takes id=host:port/);
    expect(() => parsePeerDial('4=p:1', cluster)).toThrow(expect.objectContaining({ name: 'UsageError' }));
  });
});
