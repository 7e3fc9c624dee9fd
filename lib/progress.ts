/** A one-line progress bar on a TTY; on anything else, a log line every 10%. */
export class Progress {
  private done = 0;
  private failed = 0;
  private lastDecile = -1;
  private readonly started = performance.now();

  constructor(
    private readonly total: number,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}

  tick(ok: boolean): void {
    this.done++;
    if (!ok) this.failed++;
    if (this.out.isTTY) {
      const width = 30;
      const filled = this.total === 0 ? width : Math.round((this.done / this.total) * width);
      this.out.write(
        `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.done}/${this.total}  ${this.rate().toFixed(1)} img/s  ${this.failed} failed `,
      );
      if (this.done === this.total) this.out.write('\n');
      return;
    }
    const decile = Math.floor((this.done / this.total) * 10);
    if (decile !== this.lastDecile) {
      this.lastDecile = decile;
      this.out.write(`progress ${this.done}/${this.total} (${this.rate().toFixed(1)} img/s, ${this.failed} failed)\n`);
    }
  }

  rate(): number {
    const seconds = (performance.now() - this.started) / 1000;
    return seconds > 0 ? this.done / seconds : 0;
  }

  get elapsedSeconds(): number {
    return (performance.now() - this.started) / 1000;
  }
}
