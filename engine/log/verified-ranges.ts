/**
 * Byte ranges of a segment whose batches passed their CRC check in this process (on append, in
 * recovery, or on an earlier read). Reads skip re-checking them, so each byte is verified once per
 * process, not once per reader: replaying a segment to a hundred trainers costs one CRC pass.
 * Kept as sorted, merged [start, end) intervals; sequential readers keep it to one or two.
 */
export class VerifiedRanges {
  private ranges: Array<[number, number]> = [];

  covers(start: number, end: number): boolean {
    for (const [s, e] of this.ranges) {
      if (s <= start && end <= e) return true;
      if (s > start) return false;
    }
    return false;
  }

  add(start: number, end: number): void {
    if (end <= start) return;
    const out: Array<[number, number]> = [];
    let placed = false;
    for (const [s, e] of this.ranges) {
      if (e < start) out.push([s, e]);
      else if (s > end) {
        if (!placed) out.push([start, end]), (placed = true);
        out.push([s, e]);
      } else {
        start = Math.min(start, s);
        end = Math.max(end, e);
      }
    }
    if (!placed) out.push([start, end]);
    this.ranges = out;
  }

  /** Forget everything at or past `position` (truncation). */
  cutAt(position: number): void {
    this.ranges = this.ranges.filter(([s]) => s < position).map(([s, e]) => [s, Math.min(e, position)] as [number, number]);
  }

  get count(): number {
    return this.ranges.length;
  }
}
