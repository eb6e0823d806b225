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
 *   4. A relay ahead of its upstream's high watermark on the same epoch (an upstream relay still
 *      catching up) waits.
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
  log_start_offset: number;
  high_watermark: number;
}

export type SyncAction =
  | { kind: 'start_at'; offset: number }
  | { kind: 'truncate'; to: number }
  | { kind: 'fetch'; from: number }
  | { kind: 'wait'; why: string }
  | { kind: 'gap'; local_end: number; upstream_log_start: number }
  | { kind: 'diverged_below_log_start'; common: number; local_log_start: number };

export function decide(local: LocalView, up: UpstreamView): SyncAction {
  const empty = local.end === local.log_start && local.last_epoch === -1;
  if (empty) {
    // Nothing held, nothing to conflict with: start wherever the upstream's log is.
    if (local.end < up.log_start_offset || local.end > up.high_watermark) {
      return local.end === up.log_start_offset ? { kind: 'fetch', from: local.end } : { kind: 'start_at', offset: up.log_start_offset };
    }
    return { kind: 'fetch', from: local.end };
  }
  if (up.epoch !== local.last_epoch || up.end_offset < local.end) {
    // Diverged: the logs agree up to the end of the last epoch both hold.
    const common = Math.min(up.end_offset, local.end);
    if (common < local.log_start) return { kind: 'diverged_below_log_start', common, local_log_start: local.log_start };
    return { kind: 'truncate', to: common };
  }
  if (local.end < up.log_start_offset) return { kind: 'gap', local_end: local.end, upstream_log_start: up.log_start_offset };
  if (local.end > up.high_watermark) return { kind: 'wait', why: `upstream high watermark ${up.high_watermark} is behind this relay's log end ${local.end}` };
  return { kind: 'fetch', from: local.end };
}
