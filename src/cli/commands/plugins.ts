import { EXIT } from '../client/exit.js';
import { formatTable } from '../client/table.js';
import type { Context } from './context.js';

/** `plugins [--id NAME]`: the daemon's plugins as a table, or one plugin's fields. */

type Plugin = Record<string, unknown>;

export async function listPlugins(ctx: Context, id: string | undefined): Promise<number> {
  if (id !== undefined) {
    const { body } = await ctx.client.json<{ plugin: Plugin }>('GET', `/imagefactory/plugins/${encodeURIComponent(id)}`);
    ctx.io.out.write(ctx.json ? JSON.stringify(body.plugin, null, 2) + '\n' : describePlugin({ id: body.plugin.id, ...body.plugin }));
    return EXIT.ok;
  }
  const { body } = await ctx.client.json<{ plugins: Plugin[] }>('GET', '/imagefactory/plugins');
  const plugins = body?.plugins ?? [];
  if (ctx.json) {
    ctx.io.out.write(JSON.stringify(plugins, null, 2) + '\n');
    return EXIT.ok;
  }
  if (!plugins.length) {
    ctx.io.err.write('imagefactory: the daemon has no plugins\n');
    return EXIT.ok;
  }
  const rows = plugins.map((p) => [
    String(p.id ?? ''),
    String(p.type ?? ''),
    String(p.version ?? ''),
    formatTargets(p.targets),
    p.error ? `error: ${typeof p.error === 'string' ? p.error : JSON.stringify(p.error)}` : String(p.description ?? ''),
  ]);
  ctx.io.out.write(formatTable([['ID', 'TYPE', 'VERSION', 'TARGETS', 'DESCRIPTION'], ...rows]));
  return EXIT.ok;
}

/** `[["Fedora","40",null],["RHEL",null,null]]` → `Fedora 40, RHEL`. */
export function formatTargets(targets: unknown): string {
  if (!Array.isArray(targets)) return '';
  return targets.map((t) => (Array.isArray(t) ? t.filter((part) => part !== null && part !== undefined).join(' ') : String(t))).join(', ');
}

function describePlugin(plugin: Plugin): string {
  return Object.entries(plugin)
    .map(([k, v]) => `${k}: ${k === 'targets' ? formatTargets(v) : typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join('\n') + '\n';
}
