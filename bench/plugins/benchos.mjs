// Benchmark-only OS plugin: no guest, just a disk of the requested size (sparse),
// so that what the benchmark loads is the snapshot step's sha256 in the worker pool.
import { open, rm } from 'node:fs/promises';

const nothing = { run: async () => {}, undo: async () => {} };

export default function createBenchOs() {
  return {
    prepare: nothing,
    install: {
      async run(ctx) {
        const fh = await open(ctx.diskPath, 'w');
        await fh.truncate(Number(ctx.template.diskSizeBytes ?? 64n * 1024n * 1024n));
        await fh.close();
      },
      async undo(ctx) {
        await rm(ctx.diskPath, { force: true });
      },
    },
    customize: nothing,
  };
}
