import { open } from 'node:fs/promises';

/** `qcow2` if the file starts with qcow2's magic (`QFI\xfb`), `raw` otherwise. */
export async function diskFormatOf(file: string): Promise<'qcow2' | 'raw'> {
  const handle = await open(file, 'r');
  try {
    const magic = Buffer.alloc(4);
    await handle.read(magic, 0, 4, 0);
    return magic.equals(Buffer.from([0x51, 0x46, 0x49, 0xfb])) ? 'qcow2' : 'raw';
  } finally {
    await handle.close();
  }
}
