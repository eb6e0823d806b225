/**
 * The relay sync protocol's decisions, as a pure function: given what a relay's partition holds and
 * what its upstream says about the relay's last leader epoch, what to do next. No sockets, no disk;
 * relay-runner.ts does the I/O, property-tests/relay-sync.prop.test.ts checks it against a model.
 *
 * The rule that keeps a relay's log a prefix of its upstream's committed log:
 *   1. An empty relay starts where the upstream's log starts (its earliest retained offset).
 *   2. A relay with data asks the upstream where the relay's last epoch ends there (EpochEnd).
 *      Batches of one epoch come from one writer, so the logs agree up to that point; if the relay
 *      holds more of that epoch than the upstream does (the upstream lost an unsynced tail in a
 *      crash, or a Raft leader change cut it), the relay truncates to it and asks again.
 *   3. A relay whose next offset the upstream has deleted (retention) and cannot serve from an
 *      archive has a gap: it stops and says so, it never skips ahead silently.
 *   4. A relay ahead of an upstream that knows no epoch later than the relay's (an upstream relay
 *      still catching up) waits. An origin records its new epoch's start at its log end when it
 *      restarts, before it writes anything, so a tail it lost in a crash is cut from relays at once.
 */

export interface LocalView {
  /** First offset the relay holds. */
  log_start: number;
  /** Next offset the relay will write (its log end). */
  end: number;
  /** Leader epoch of the relay's last batch, -1 when it holds nothing. */
  last_epoch: number;
}

export interface UpstreamView {
  /** EpochEnd's answer for `LocalView.last_epoch` (absent when the relay is empty). */
  epoch: number;
  end_offset: number;
  /** The newest epoch the upstream knows: of its last batch, or of its current incarnation (origin). */
  latest_epoch: number;
  log_start_offset: number;
  high_watermark: number;
}

export type SyncAction =
  | { kind: 'start_at'; offset: number }
  | { kind: 'truncate'; to: number }
  /**
   * Follow the upstream from `from`. With `mark_epoch`: the upstream has begun that epoch exactly
   * at this relay's log end and written nothing in it yet; record it (PartitionLog.markEpochStart)
   * so relays below this one learn of the new epoch too.
   */
  | { kind: 'fetch'; from: number; mark_epoch?: number }
  | { kind: 'wait'; why: string }
  | { kind: 'gap'; local_end: number; upstream_log_start: number }
  /**
   * Diverged at or below the relay's own log start: everything it holds is gone upstream; empty it
   * and start at `to` (then, as any empty relay, at the upstream's log start if `to` is gone there).
   */
  | { kind: 'reset'; to: number };

export function decide(local: LocalView, up: UpstreamView): SyncAction {
  const empty = local.end === local.log_start && local.last_epoch === -1;
  if (empty) {
    // Nothing held, nothing to conflict with: start wherever the upstream's log is.
    if (local.end < up.log_start_offset || local.end > up.high_watermark) {
      return local.end === up.log_start_offset ? { kind: 'fetch', from: local.end } : { kind: 'start_at', offset: up.log_start_offset };
    }
    if (local.end === up.high_watermark && up.latest_epoch >= 0) return { kind: 'fetch', from: local.end, mark_epoch: up.latest_epoch };
    return { kind: 'fetch', from: local.end };
  }
  const mismatch = up.epoch !== local.last_epoch || up.end_offset < local.end;
  if (mismatch && up.latest_epoch > local.last_epoch) {
    // The upstream went on in a later epoch from end_offset, so the logs agree only up to there
    // (the end of the last epoch both hold). At or past this relay's end: no divergence.
    const common = Math.min(up.end_offset, local.end);
    if (common < local.end) {
      // Nothing the relay holds survives upstream (a cut at its own log start empties it too).
      if (common <= local.log_start) return { kind: 'reset', to: common };
      return { kind: 'truncate', to: common };
    }
  } else if (mismatch) {
    // The upstream has nothing later than this relay's epoch: it is behind (a lagging relay after a
    // failover or failback). Wait; never truncate what may be the upstream's future.
    return { kind: 'wait', why: `upstream ends at ${up.high_watermark} in epoch ${up.latest_epoch}, behind this relay's log end ${local.end} in epoch ${local.last_epoch}` };
  }
  if (local.end < up.log_start_offset) return { kind: 'gap', local_end: local.end, upstream_log_start: up.log_start_offset };
  if (local.end > up.high_watermark) return { kind: 'wait', why: `upstream high watermark ${up.high_watermark} is behind this relay's log end ${local.end}` };
  if (up.latest_epoch > local.last_epoch && local.end === up.high_watermark) return { kind: 'fetch', from: local.end, mark_epoch: up.latest_epoch };
  return { kind: 'fetch', from: local.end };
}
