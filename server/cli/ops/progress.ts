import cliProgress from 'cli-progress';
import { formatBytes } from './format.js';

/**
 * A progress bar on stderr (cli-progress) for offline work (bytes, or a count of items). It appears only when
 * stderr is a terminal and only once the work has run for a second, so quick runs, pipes, scripts
 * and tests never see it; stdout (the report) is never touched.
 */
export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private value = 0;
  private readonly started_ms = Date.now();
  private readonly enabled: boolean;

  constructor(
    private readonly label: string,
    private total: number,
    /** Whether a bar is wanted at all (it is shown only on a terminal, whatever this says). */
    wanted = true,
    /** How amounts are shown: bytes (the default) or a plain count. */
    private readonly show: (n: number) => string = formatBytes,
  ) {
    this.enabled = wanted && process.stderr.isTTY === true && total > 0;
  }

  /** `n` more bytes done. */
  add(n: number): void {
    this.value += n;
    if (!this.enabled) return;
    if (this.bar === null) {
      if (Date.now() - this.started_ms < 1000) return;
      this.bar = new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: `${this.label} [{bar}] {percentage}% | {done} of {size} | ETA {eta_formatted}`,
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(this.total, 0, { done: this.show(0), size: this.show(this.total) });
    }
    this.bar.update(Math.min(this.value, this.total), { done: this.show(this.value) });
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
