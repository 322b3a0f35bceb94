/** ICICLE: the package manifest of a built image, as Oz wrote it. */

export interface IciclePackage {
  /** The name with version and architecture as the distribution prints them, e.g. `jq_1.6-2.1_amd64`. */
  name: string;
  /** The line `icicle/extra_command` printed for this package, if any. */
  extra: string | null;
}

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function icicleXml(description: string | null, packages: IciclePackage[]): string {
  const lines = ['<icicle>'];
  if (description !== null) lines.push(`  <description>${escape(description)}</description>`);
  lines.push('  <packages>');
  for (const p of packages) {
    lines.push(p.extra === null ? `    <package name="${escape(p.name)}"/>` : `    <package name="${escape(p.name)}"><extra>${escape(p.extra)}</extra></package>`);
  }
  lines.push('  </packages>', '</icicle>', '');
  return lines.join('\n');
}
