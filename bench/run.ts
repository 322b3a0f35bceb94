import { debianBuild } from './debian-build.js';
import { guestPackages } from './guest-packages.js';
import { pushBench } from './push.js';
import { statusLatency } from './status-latency.js';
import { targetsBench } from './targets.js';

/**
 * `npm run bench [-- NAME…]`: every benchmark (or those named: status,
 * debian, push, guest-packages, targets), printed as a table with ratios against a baseline of the same run.
 */
const fmt = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const args = process.argv.slice(2);
/** `--runs N`: each figure is the median of N runs (benchmarks that take it). */
const runsOption = () => {
  const i = args.indexOf('--runs');
  return i === -1 ? 1 : Math.max(1, Number(args[i + 1]) || 1);
};
const wanted = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--runs');
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
  const { rows, ratio, commandsOnlyRatio, runs, accel } = await debianBuild({ runs: runsOption() });
  const base = rows[0]!.figure.seconds;
  console.log(`\nDebian 12 image, end to end (examples/debian-12.tdl: packages, files, commands; accelerator ${accel}; ${runs > 1 ? `median of ${runs} runs` : 'one run'})`);
  console.log('Both sides: the same package set and kernel package, the same package cache (warmed by an unmeasured build), the same disk assembly and accelerator.\n');
  console.log(['scenario'.padEnd(32), 'seconds', 'ratio', 'what differs'].join('  '));
  for (const r of rows) console.log([r.name.padEnd(32), r.figure.seconds.toFixed(1).padStart(7), `${(r.figure.seconds / base).toFixed(2)}x`.padStart(5), r.note].join('  '));
  console.log('\nwhere the time goes:');
  for (const r of rows) console.log(`  ${r.name.padEnd(32)} ${r.figure.phases.map(([n, s]) => `${n} ${s.toFixed(1)} s`).join(', ')}`);
  console.log(`\nbuild / hand-run baseline = ${ratio.toFixed(2)}x (goal: at most 1.15x)`);
  console.log(`rebuild with only the commands changed / hand-run baseline = ${commandsOnlyRatio.toFixed(2)}x (goal: at most 0.4x)\n`);
}

if (selected('guest-packages')) {
  const { rows, ratio } = await guestPackages();
  const base = rows[0]!.seconds;
  console.log('\nPackages in the guest: examples/debian-12.tdl (nginx-light, curl, jq), on the host vs. in the guest (TCG)\n');
  console.log(['scenario'.padEnd(32), 'seconds', 'ratio', 'detail'].join('  '));
  for (const r of rows) console.log([r.name.padEnd(32), r.seconds.toFixed(1).padStart(7), `${(r.seconds / base).toFixed(2)}x`.padStart(5), r.detail].join('  '));
  console.log(`\nguest / host = ${ratio.toFixed(2)}x (the price of a repository the host may not use)\n`);
}

if (selected('push')) {
  const { rows, imageBytes, allocatedBytes, fullUploadBytes } = await pushBench();
  const MB = 1e6;
  const base = rows[0]!.seconds;
  console.log(`\nEC2 push to moto (EBS direct APIs) of a Debian-sized raw image: ${(imageBytes / 2 ** 30).toFixed(1)} GiB, ${(allocatedBytes / MB).toFixed(0)} MB allocated\n`);
  console.log(['scenario'.padEnd(24), 'seconds', 'ratio', 'blocks sent', 'skipped', 'MB at wire', 'sent/allocated'].join('  '));
  for (const r of rows) {
    console.log(
      [r.name.padEnd(24), r.seconds.toFixed(1).padStart(7), `${(r.seconds / base).toFixed(2)}x`.padStart(5), String(r.blocksSent).padStart(11), String(r.blocksSkipped).padStart(7), (r.bytesAtWire / MB).toFixed(0).padStart(10), (r.bytesAtWire / allocatedBytes).toFixed(3).padStart(14)].join('  '),
    );
  }
  const last = rows.at(-1)!;
  console.log(`\nbytes sent / allocated bytes = ${(last.bytesAtWire / allocatedBytes).toFixed(3)} (goal: at most 1.01); a push of every block would send ${(fullUploadBytes / MB).toFixed(0)} MB`);
  console.log(`${last.parallel} requests in flight vs 1: ${(base / last.seconds).toFixed(2)}x faster; push of the Debian-sized image: ${last.seconds.toFixed(1)} s\n`);
}

if (selected('targets')) {
  const { conversions, targets, ratio, bestRatio } = await targetsBench();
  console.log('\nConversion of the Debian test base\'s overlay: the factory (convertDisk) vs. the same qemu-img convert alone (interleaved runs)\n');
  console.log(['format'.padEnd(26), 'alone s', 'factory s', 'ratio', 'best alone s', 'best factory s', 'ratio'].join('  '));
  for (const c of conversions) {
    console.log(
      [c.format.padEnd(26), c.alone.toFixed(3).padStart(7), c.factory.toFixed(3).padStart(9), `${c.ratio.toFixed(2)}x`.padStart(5), c.aloneBest.toFixed(3).padStart(12), c.factoryBest.toFixed(3).padStart(14), `${c.bestRatio.toFixed(2)}x`.padStart(5)].join('  '),
    );
  }
  console.log(`\nworst factory / qemu-img alone = ${ratio.toFixed(2)}x by medians, ${bestRatio.toFixed(2)}x by best runs (goal: at most 1.05x)\n`);
  console.log('Each target from the same base (no target content: no adaptation boot)\n');
  console.log(['target'.padEnd(22), 'adapt s', 'convert s', 'output MiB', 'format'].join('  '));
  for (const t of targets) console.log([t.target.padEnd(22), t.adapt.toFixed(2).padStart(7), t.convert.toFixed(2).padStart(9), (t.size / 1048576).toFixed(0).padStart(10), t.format].join('  '));
  console.log('');
}
