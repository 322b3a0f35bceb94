/**
 * Live progress of a build. On a terminal: one line redrawn in place (a
 * carriage return, the bar, erase to the end of the line), refreshed every
 * second so the elapsed time moves. Elsewhere (a pipe, a CI log): one plain
 * line per change of status, phase, activity or percent.
 */

export interface ProgressState {
  status: string;
  phase: string;
  activity: string;
  percent: number;
}

/** Where progress goes: a terminal when `isTTY` is true (e.g. process.stderr). */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface Progress {
  update(state: ProgressState): void;
  /** A message line that must not be overwritten by the bar (e.g. "cancelling…"). */
  note(line: string): void;
  /** Leaves the last state on screen and stops redrawing. */
  done(): void;
}

export interface ProgressOptions {
  /** When the build started (ms since the epoch); elapsed time counts from here. */
  startedAt?: number;
  now?: () => number;
  /** How often a terminal line is redrawn for the elapsed time; 1 s. */
  tickMs?: number;
}

const BAR_WIDTH = 20;
const ERASE_LINE = '\x1b[K';

export function formatElapsed(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

const clampPercent = (p: number) => Math.max(0, Math.min(100, Math.round(Number.isFinite(p) ? p : 0)));

export function bar(percent: number, width = BAR_WIDTH): string {
  const filled = Math.round((clampPercent(percent) * width) / 100);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

const describe = (s: ProgressState) => `${s.status}${s.phase ? ` ${s.phase}` : ''}`;

export function plainLine(s: ProgressState, elapsedMs: number): string {
  return `${formatElapsed(elapsedMs)} ${describe(s)} ${clampPercent(s.percent)}%${s.activity ? ` ${s.activity}` : ''}`;
}

export function ttyLine(s: ProgressState, elapsedMs: number): string {
  const percent = `${clampPercent(s.percent)}%`.padStart(4);
  return `${bar(s.percent)} ${percent}  ${formatElapsed(elapsedMs)}  ${describe(s)}${s.activity ? `: ${s.activity}` : ''}`;
}

export function createProgress(stream: ProgressStream, opts: ProgressOptions = {}): Progress {
  const now = opts.now ?? Date.now;
  const startedAt = opts.startedAt ?? now();
  return stream.isTTY ? new TtyProgress(stream, startedAt, now, opts.tickMs ?? 1000) : new PlainProgress(stream, startedAt, now);
}

class PlainProgress implements Progress {
  private last = '';
  constructor(
    private readonly stream: ProgressStream,
    private readonly startedAt: number,
    private readonly now: () => number,
  ) {}

  update(state: ProgressState): void {
    const key = `${state.status}|${state.phase}|${state.activity}|${clampPercent(state.percent)}`;
    if (key === this.last) return;
    this.last = key;
    this.stream.write(plainLine(state, this.now() - this.startedAt) + '\n');
  }

  note(line: string): void {
    this.stream.write(line + '\n');
  }

  done(): void {}
}

class TtyProgress implements Progress {
  private state: ProgressState | undefined;
  private timer: NodeJS.Timeout | undefined;
  private drawn = false;

  constructor(
    private readonly stream: ProgressStream,
    private readonly startedAt: number,
    private readonly now: () => number,
    private readonly tickMs: number,
  ) {}

  update(state: ProgressState): void {
    this.state = { ...state };
    this.draw();
    if (!this.timer) {
      this.timer = setInterval(() => this.draw(), this.tickMs);
      this.timer.unref();
    }
  }

  note(line: string): void {
    this.stream.write(`\r${ERASE_LINE}${line}\n`);
    this.drawn = false;
    this.draw();
  }

  done(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.state) this.draw();
    if (this.drawn) this.stream.write('\n');
    this.state = undefined;
    this.drawn = false;
  }

  private draw(): void {
    if (!this.state) return;
    const columns = this.stream.columns !== undefined && this.stream.columns > 0 ? this.stream.columns : 80;
    const width = Math.max(20, columns - 1);
    const line = ttyLine(this.state, this.now() - this.startedAt);
    this.stream.write(`\r${line.length > width ? line.slice(0, width - 1) + '…' : line}${ERASE_LINE}`);
    this.drawn = true;
  }
}
