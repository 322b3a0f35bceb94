import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followChannel } from '../../src/os/debian/follow.js';
import { tempDir } from './helpers.js';

let dir: { path: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  dir = await tempDir('debian-follow');
});
afterAll(async () => dir.cleanup());

const INTERVAL = 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(INTERVAL);
  }
}

describe('following the channel', () => {
  it('passes a line without newline on in bounded pieces instead of holding it', async () => {
    const path = join(dir.path, 'endless.log');
    const pieces: string[] = [];
    const follow = followChannel(path, (l) => pieces.push(l), INTERVAL, 1000);
    try {
      for (let i = 0; i < 50; i++) await appendFile(path, 'x'.repeat(999));
      // While the guest still writes, what was read is passed on: nothing waits for a newline.
      await waitFor(() => pieces.length >= 40, 'pieces of the endless line');
      await appendFile(path, '\nshort\n');
    } finally {
      await follow.stop();
    }
    expect(pieces.every((p) => p.length <= 1000)).toBe(true);
    expect(pieces.slice(0, -1).join('')).toBe('x'.repeat(50 * 999));
    expect(pieces.at(-1)).toBe('short');
  });

  it('reports each complete line as the file grows, and the rest when stopped', async () => {
    const path = join(dir.path, 'channel.log');
    const lines: string[] = [];
    const follow = followChannel(path, (l) => lines.push(l), INTERVAL);
    try {
      // The guest has not written anything yet: the file does not exist.
      await sleep(5 * INTERVAL);
      expect(lines).toEqual([]);

      await appendFile(path, 'IFMARK booted running\nIFMARK beg');
      await waitFor(() => lines.length === 1, 'the first line');
      await sleep(5 * INTERVAL);
      expect(lines).toEqual(['IFMARK booted running']);

      await appendFile(path, 'in command x\r\nstill ');
      await waitFor(() => lines.length === 2, 'the line completed by a second write');
      expect(lines[1]).toBe('IFMARK begin command x');

      // "é" is two bytes in UTF-8; the guest's writes split them.
      const e = Buffer.from('é');
      await appendFile(path, Buffer.concat([Buffer.from('going caf'), e.subarray(0, 1)]));
      await sleep(5 * INTERVAL);
      expect(lines).toHaveLength(2);
      await appendFile(path, Buffer.concat([e.subarray(1), Buffer.from('\nno final newline')]));
      await waitFor(() => lines.length === 3, 'the line with the split character');
      expect(lines[2]).toBe('still going café');

      await sleep(5 * INTERVAL);
      expect(lines).toHaveLength(3);
    } finally {
      await follow.stop();
    }
    expect(lines).toEqual(['IFMARK booted running', 'IFMARK begin command x', 'still going café', 'no final newline']);
  });

  it('reads what was written right before it was stopped, without waiting for a poll', async () => {
    const path = join(dir.path, 'late.log');
    const lines: string[] = [];
    const follow = followChannel(path, (l) => lines.push(l), 60_000);
    await appendFile(path, 'one\ntwo\nthree');
    await follow.stop();
    expect(lines).toEqual(['one', 'two', 'three']);
  });

  it('reports nothing and stops cleanly when the file never appears', async () => {
    const lines: string[] = [];
    const follow = followChannel(join(dir.path, 'never.log'), (l) => lines.push(l), INTERVAL);
    await sleep(5 * INTERVAL);
    await follow.stop();
    expect(lines).toEqual([]);
  });

  it('stops polling once stopped', async () => {
    const path = join(dir.path, 'stopped.log');
    const lines: string[] = [];
    const follow = followChannel(path, (l) => lines.push(l), INTERVAL);
    await appendFile(path, 'before\n');
    await follow.stop();
    await appendFile(path, 'after\n');
    await sleep(5 * INTERVAL);
    expect(lines).toEqual(['before']);
  });
});
