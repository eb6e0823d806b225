import { limitExceeded } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { AppendResult } from './types.js';

export interface PendingAppend {
  batches: Buffer[];
  bytes: number;
  leader_epoch: number;
  /** Batches copied from another log: offsets and epochs kept (PartitionLog.appendReplicated). */
  replicated?: boolean;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

/**
 * The waiting room in front of a partition's single writer. Whatever is queued when the writer
 * becomes free is taken as one group (up to `group_commit_max_bytes`) and written together:
 * group commit. Bounded by `append_queue_max_bytes`; beyond it appends are refused, not queued.
 */
export class AppendQueue {
  private queue: PendingAppend[] = [];
  private queued_bytes = 0;
  private running: Promise<void> | null = null;

  constructor(private readonly writeGroup: (group: PendingAppend[]) => Promise<void>, private readonly accepting: () => boolean) {}

  enqueue(p: Omit<PendingAppend, 'resolve' | 'reject'>): Promise<AppendResult> {
    if (this.queued_bytes + p.bytes > limits.append_queue_max_bytes) {
      return Promise.reject(limitExceeded('append_queue_max_bytes', this.queued_bytes + p.bytes, limits.append_queue_max_bytes));
    }
    return new Promise<AppendResult>((resolve, reject) => {
      // Spelled out rather than spread: one object shape for every pending append.
      this.queue.push({ batches: p.batches, bytes: p.bytes, leader_epoch: p.leader_epoch, replicated: p.replicated === true, resolve, reject });
      this.queued_bytes += p.bytes;
      this.start();
    });
  }

  /** Resolves when the writer is idle (nothing queued or being written). */
  async drained(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
  }

  /** Rejects everything still waiting (a crash stop). */
  rejectAll(err: unknown): void {
    for (const p of this.queue.splice(0)) p.reject(err);
    this.queued_bytes = 0;
  }

  private start(): void {
    if (this.running) return;
    this.running = (async () => {
      while (this.queue.length > 0) {
        const group = this.take();
        try {
          await this.writeGroup(group);
        } catch (err) {
          // writeGroup settles its group itself; if it throws instead (a bug, or a catalog write
          // failing after the segment write), the group's appends fail with that error rather
          // than wait forever, and the rejection is not left unhandled (it would end the process).
          for (const p of group) p.reject(err);
        }
      }
    })().finally(() => {
      this.running = null;
      if (this.queue.length > 0 && this.accepting()) this.start();
    });
  }

  private take(): PendingAppend[] {
    const group: PendingAppend[] = [];
    let bytes = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      if (group.length > 0 && bytes + next.bytes > limits.group_commit_max_bytes) break;
      group.push(this.queue.shift()!);
      bytes += next.bytes;
      this.queued_bytes -= next.bytes;
    }
    return group;
  }
}
