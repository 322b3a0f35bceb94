import { open } from 'node:fs/promises';

const GLOBAL_HEADER = 24;
const RECORD_HEADER = 16;
const READ_CHUNK = 1 << 20;

/**
 * Counts the bytes that crossed a guest's user-mode (slirp) network, which
 * QEMU keeps no counters for. QEMU's `filter-dump` netfilter writes every
 * frame, both directions, to a pcap file; with a small `maxlen` each record is
 * a 16-byte header plus a few bytes of frame, and the header carries the
 * frame's original length. This reads the file incrementally from where it
 * stopped last time and sums those lengths.
 */
export class PcapByteCounter {
  private offset = 0;
  private total = 0;
  private littleEndian: boolean | undefined;

  constructor(readonly path: string) {}

  /** Cumulative bytes of all complete records so far (0 while the file does not exist yet). */
  async read(): Promise<number> {
    let handle;
    try {
      handle = await open(this.path, 'r');
    } catch {
      return this.total;
    }
    try {
      const { size } = await handle.stat();
      if (this.littleEndian === undefined) {
        if (size < GLOBAL_HEADER) return this.total;
        const head = Buffer.alloc(4);
        await handle.read(head, 0, 4, 0);
        const magicLe = head.readUInt32LE(0);
        if (magicLe === 0xa1b2c3d4 || magicLe === 0xa1b23c4d) this.littleEndian = true;
        else if (head.readUInt32BE(0) === 0xa1b2c3d4 || head.readUInt32BE(0) === 0xa1b23c4d) this.littleEndian = false;
        else return this.total;
        this.offset = GLOBAL_HEADER;
      }
      while (this.offset + RECORD_HEADER <= size) {
        const want = Math.min(READ_CHUNK, size - this.offset);
        const buf = Buffer.alloc(want);
        const { bytesRead } = await handle.read(buf, 0, want, this.offset);
        let pos = 0;
        while (pos + RECORD_HEADER <= bytesRead) {
          const inclLen = this.littleEndian ? buf.readUInt32LE(pos + 8) : buf.readUInt32BE(pos + 8);
          const origLen = this.littleEndian ? buf.readUInt32LE(pos + 12) : buf.readUInt32BE(pos + 12);
          if (pos + RECORD_HEADER + inclLen > bytesRead) break; // incomplete record: next time
          this.total += origLen;
          pos += RECORD_HEADER + inclLen;
        }
        if (pos === 0) break;
        this.offset += pos;
      }
      return this.total;
    } finally {
      await handle.close();
    }
  }
}
