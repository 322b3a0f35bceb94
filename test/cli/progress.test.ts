import { describe, expect, it } from 'vitest';
import { bar, createProgress, formatElapsed, type ProgressState } from '../../src/cli/client/progress.js';

/** A stream that records what was written; a terminal when `isTTY`. */
function fakeStream(isTTY: boolean, columns?: number) {
  const writes: string[] = [];
  return { writes, text: () => writes.join(''), isTTY, columns, write: (s: string) => writes.push(s) };
}

const state = (over: Partial<ProgressState> = {}): ProgressState => ({ status: 'BUILDING', phase: 'installing', activity: 'Writing the disk', percent: 42, ...over });

describe('the progress display', () => {
  it('on a terminal redraws one line in place with a carriage return, the bar, percent, elapsed time and activity', () => {
    const stream = fakeStream(true, 120);
    let now = 1_000;
    const p = createProgress(stream, { startedAt: 0, now: () => now });
    p.update(state());
    now = 5_000;
    p.update(state({ percent: 60 }));
    p.done();
    const text = stream.text();
    expect(stream.writes[0]).toBe('\r[########............]  42%  0:01  BUILDING installing: Writing the disk\x1b[K');
    expect(stream.writes[1]).toBe('\r[############........]  60%  0:05  BUILDING installing: Writing the disk\x1b[K');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.split('\n')).toHaveLength(2); // one line, finished by a single newline
  });

  it('on a terminal redraws every tick so the elapsed time moves, and stops after done', async () => {
    const stream = fakeStream(true);
    const p = createProgress(stream, { startedAt: Date.now() - 65_000, tickMs: 20 });
    p.update(state());
    await new Promise((r) => setTimeout(r, 90));
    const drawn = stream.writes.length;
    expect(drawn).toBeGreaterThan(2);
    expect(stream.writes.at(-1)).toContain('1:0');
    p.done();
    const after = stream.writes.length;
    await new Promise((r) => setTimeout(r, 60));
    expect(stream.writes.length).toBe(after);
  });

  it('on a terminal cuts the line to the terminal width and keeps notes on their own lines', () => {
    const stream = fakeStream(true, 40);
    const p = createProgress(stream, { startedAt: 0, now: () => 0 });
    p.update(state({ activity: 'a very long activity text that cannot fit in forty columns' }));
    const drawn = stream.writes[0]!.replace('\r', '').replace('\x1b[K', '');
    expect(drawn.length).toBeLessThanOrEqual(39);
    expect(drawn.endsWith('…')).toBe(true);
    p.note('imagefactory: cancelling');
    expect(stream.writes[1]).toBe('\r\x1b[Kimagefactory: cancelling\n');
    expect(stream.writes[2]!.startsWith('\r[')).toBe(true); // the bar comes back below the note
    p.done();
  });

  it('elsewhere writes one plain line per change, without carriage returns or escapes', () => {
    const stream = fakeStream(false);
    let now = 0;
    const p = createProgress(stream, { startedAt: 0, now: () => now });
    p.update(state({ status: 'NEW', phase: 'queued', activity: 'Queued', percent: 0 }));
    p.update(state({ status: 'NEW', phase: 'queued', activity: 'Queued', percent: 0 }));
    now = 3_000;
    p.update(state());
    now = 61_000;
    p.update(state({ status: 'COMPLETE', phase: 'complete', activity: 'Build complete', percent: 100 }));
    p.note('a note');
    p.done();
    expect(stream.text()).toBe(['0:00 NEW queued 0% Queued', '0:03 BUILDING installing 42% Writing the disk', '1:01 COMPLETE complete 100% Build complete', 'a note', ''].join('\n'));
  });

  it('formats elapsed time and the bar', () => {
    expect(formatElapsed(0)).toBe('0:00');
    expect(formatElapsed(59_999)).toBe('0:59');
    expect(formatElapsed(3_725_000)).toBe('1:02:05');
    expect(bar(0, 10)).toBe('[..........]');
    expect(bar(55, 10)).toBe('[######....]');
    expect(bar(250, 10)).toBe('[##########]');
  });
});
