import { defineConfig } from 'vitest/config';

/** Tests that stop a service of the host (libvirtd) run alone, after all others. */
const HOST_EXCLUSIVE = ['test/hypervisor/libvirtd-restart.test.ts'];

export default defineConfig({
  test: {
    // Builds, daemons and real processes take seconds, not milliseconds.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Most test files wait on guests, daemons and tools rather than compute: three at a time
    // on a 2-core machine finish far sooner than vitest's default of one per spare core.
    maxWorkers: 3,
    projects: [
      { extends: true, test: { name: 'shared', include: ['test/**/*.test.ts'], exclude: HOST_EXCLUSIVE, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'host-exclusive', include: HOST_EXCLUSIVE, sequence: { groupOrder: 1 } } },
    ],
  },
});
