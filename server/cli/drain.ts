import type { RelaylogClient } from '../../client/client.js';

/*
 * `relaylog node drain N`: moves every partition leadership off node N (before maintenance), one
 * partition at a time, through TransferLeader (docs/operations.md). Leaders are read from the
 * node the command talks to; each transfer is answered by the partition's leader itself.
 */

export interface DrainMove {
  topic: string;
  partition: number;
  from: number;
  /** The node that leads now (0 if the move failed). */
  to: number;
  error?: string;
}

/** Transfers each partition led by `node_id` to another voter (trying them in turn); one entry per partition it led. */
export async function drainNode(c: RelaylogClient, node_id: number, timeout_ms: number, on_move: (m: DrainMove) => void = () => undefined): Promise<DrainMove[]> {
  const moves: DrainMove[] = [];
  for (const t of await c.listTopics()) {
    for (const p of t.partitions) {
      if (p.leader_id !== node_id) continue;
      const others = (p.voters ?? []).filter((id) => id !== node_id);
      const move: DrainMove = { topic: t.name, partition: p.partition, from: node_id, to: 0 };
      if (others.length === 0) move.error = `node ${node_id} is the only voter`;
      for (const to of others) {
        try {
          move.to = (await c.transferLeader(t.name, p.partition, to, timeout_ms)).leader_id;
          delete move.error;
          break;
        } catch (err) {
          move.error = (err as Error).message;
        }
      }
      moves.push(move);
      on_move(move);
    }
  }
  return moves;
}
