import { deflateSync } from 'node:zlib';

/** The eight bytes every PNG file starts with. */
export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function isPng(data: Buffer): boolean {
  return data.length >= 8 && data.subarray(0, 8).equals(PNG_SIGNATURE);
}

export interface RgbImage {
  width: number;
  height: number;
  /** width × height × 3 bytes, rows top to bottom. */
  rgb: Buffer;
}

/**
 * Reads a binary PPM (`P6`), the format QEMU's `screendump` and libvirt's
 * `virsh screenshot` write when PNG output is not available.
 */
export function parsePpm(data: Buffer): RgbImage {
  let pos = 0;
  const token = (): string => {
    for (;;) {
      while (pos < data.length && /\s/.test(String.fromCharCode(data[pos]!))) pos++;
      if (data[pos] === 0x23 /* # comment to end of line */) {
        while (pos < data.length && data[pos] !== 0x0a) pos++;
        continue;
      }
      break;
    }
    const start = pos;
    while (pos < data.length && !/\s/.test(String.fromCharCode(data[pos]!))) pos++;
    return data.toString('latin1', start, pos);
  };
  if (token() !== 'P6') throw new Error('not a binary PPM (P6) image');
  const width = Number(token());
  const height = Number(token());
  const maxval = Number(token());
  if (!(width > 0 && height > 0 && maxval > 0 && maxval < 65536)) throw new Error('malformed PPM header');
  pos++; // the single whitespace after maxval
  const sampleBytes = maxval < 256 ? 1 : 2;
  const need = width * height * 3 * sampleBytes;
  if (data.length - pos < need) throw new Error('truncated PPM image');
  const rgb = Buffer.alloc(width * height * 3);
  for (let i = 0; i < rgb.length; i++) {
    const v = sampleBytes === 1 ? data[pos + i]! : data.readUInt16BE(pos + 2 * i);
    rgb[i] = maxval === 255 ? v : Math.round((v * 255) / maxval);
  }
  return { width, height, rgb };
}

/** Encodes 8-bit RGB as PNG (filter 0 on every row; zlib does the work). */
export function encodePng(image: RgbImage): Buffer {
  const { width, height, rgb } = image;
  const stride = width * 3;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0;
    rgb.copy(raw, y * (stride + 1) + 1, y * stride, (y + 1) * stride);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  ihdr[10] = 0; // compression
  ihdr[11] = 0; // filter
  ihdr[12] = 0; // interlace
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

export function ppmToPng(ppm: Buffer): Buffer {
  return encodePng(parsePpm(ppm));
}

function chunk(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
  return Buffer.concat([head, body, crc]);
}

let CRC_TABLE: Uint32Array | undefined;

function crc32(data: Buffer): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
