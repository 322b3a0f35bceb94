import { debianBuild } from './debian-build.js';
import { statusLatency } from './status-latency.js';

/**
 * `npm run bench [-- NAME…]`: every benchmark (or those named: status,
 * debian), printed as a table with ratios against a baseline of the same run.
 */
const fmt = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const wanted = process.argv.slice(2);
const selected = (name: string) => wanted.length === 0 || wanted.includes(name);

if (selected('status')) {
  const { rows, ratio } = await statusLatency();
  console.log('\nStatus GET latency (GET /imagefactory/base_images/:id, 4 keep-alive connections, 4 s each)\n');
  console.log(['scenario'.padEnd(34), 'requests', 'errors', 'p50 ms', 'p99 ms', 'max ms'].join('  '));
  for (const [name, f] of rows) {
    console.log([name.padEnd(34), String(f.requests).padStart(8), String(f.errors).padStart(6), fmt(f.p50).padStart(6), fmt(f.p99).padStart(6), fmt(f.max).padStart(6)].join('  '));
  }
  console.log(`\np99 while hashing / p99 idle = ${ratio.toFixed(2)}x (goal: at most 3x)\n`);
}

if (selected('debian')) {
  const { rows, ratio } = await debianBuild();
  const base = rows[0]!.seconds;
  console.log('\nDebian 12 image, end to end (examples/debian-12.tdl: packages, files, commands; TCG)\n');
  console.log(['scenario'.padEnd(32), 'seconds', 'ratio', 'detail'].join('  '));
  for (const r of rows) console.log([r.name.padEnd(32), r.seconds.toFixed(1).padStart(7), `${(r.seconds / base).toFixed(2)}x`.padStart(5), r.detail].join('  '));
  console.log(`\nbuild / hand-run baseline = ${ratio.toFixed(2)}x (goal: at most 1.15x)\n`);
}
