import { statusLatency } from './status-latency.js';

/** `npm run bench`: every benchmark, printed as a table with ratios against a baseline of the same run. */
const fmt = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');

const { rows, ratio } = await statusLatency();
console.log('\nStatus GET latency (GET /imagefactory/base_images/:id, 4 keep-alive connections, 4 s each)\n');
console.log(['scenario'.padEnd(34), 'requests', 'errors', 'p50 ms', 'p99 ms', 'max ms'].join('  '));
for (const [name, f] of rows) {
  console.log([name.padEnd(34), String(f.requests).padStart(8), String(f.errors).padStart(6), fmt(f.p50).padStart(6), fmt(f.p99).padStart(6), fmt(f.max).padStart(6)].join('  '));
}
console.log(`\np99 while hashing / p99 idle = ${ratio.toFixed(2)}x (goal: at most 3x)\n`);
