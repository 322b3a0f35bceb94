import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { answerFileFor, chooseInstaller } from '../../src/os/answer/index.js';
import { example, exampleTemplates, template } from './helpers.js';

describe('choosing the installer', () => {
  it('runs every example template through its generator', () => {
    const chosen = Object.fromEntries([...exampleTemplates()].map(([name, t]) => [name, answerFileFor(t).installer]));
    expect(chosen).toEqual({ 'debian-12': 'preseed', 'fedora-40': 'kickstart', 'rhel-9': 'kickstart', 'ubuntu-22.04': 'autoinstall' });
    for (const [name, t] of exampleTemplates()) {
      const answer = answerFileFor(t);
      expect(answer.source, name).toBe('generated');
      expect(answer.rootPassword?.generated, name).toBe(false);
      expect(answer.content, name).not.toContain(t.os.rootpw!);
      expect(answer.content, name).toMatch(/\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}/);
      expect(answer.content, name).toMatch(/poweroff/);
      expect(answer.content, name).toMatch(/ttyS0/);
      for (const p of t.packages) expect(answer.content, name).toContain(p.name);
    }
  });

  it('picks by name and version: Red Hat → kickstart, Debian → preseed, Ubuntu ≥ 20.04 → autoinstall, older Ubuntu → preseed', () => {
    expect(chooseInstaller({ name: 'fedora', version: '41' })).toBe('kickstart');
    expect(chooseInstaller({ name: 'RHEL-8', version: '9' })).toBe('kickstart');
    expect(chooseInstaller({ name: 'CentOS-Stream', version: '10' })).toBe('kickstart');
    expect(chooseInstaller({ name: 'debian', version: '13' })).toBe('preseed');
    expect(chooseInstaller({ name: 'Ubuntu', version: '20.04' })).toBe('autoinstall');
    expect(chooseInstaller({ name: 'Ubuntu', version: '18.04' })).toBe('preseed');
    expect(chooseInstaller({ name: 'Ubuntu', version: '20.04' }, { ubuntuInstaller: 'preseed' })).toBe('preseed');
    expect(answerFileFor(example('ubuntu-22.04'), {}, { ubuntuInstaller: 'preseed' }).fileName).toBe('preseed.cfg');
    expect(() => chooseInstaller({ name: 'Windows', version: '2022' })).toThrow(expect.objectContaining({ code: 'unsupported_os' }));
    expect(() => chooseInstaller({ name: 'Debian', version: '8' })).toThrow(expect.objectContaining({ code: 'unsupported_version' }));
  });
});

describe('install_script', () => {
  const script = '# my own kickstart\ntext\nrootpw --plaintext mine\n%packages\n@core\n%end\n';

  it('replaces the generated file verbatim, under the installer\'s file name', () => {
    const answer = answerFileFor(example('fedora-40'), { install_script: script });
    expect(answer).toEqual({ installer: 'kickstart', fileName: 'ks.cfg', content: script, companions: [], source: 'install_script', rootPassword: null });
    const preseed = answerFileFor(example('debian-12'), { install_script: 'd-i anything string x\n' });
    expect(preseed).toMatchObject({ installer: 'preseed', fileName: 'preseed.cfg', content: 'd-i anything string x\n' });
  });

  it('keeps a generated meta-data next to an autoinstall user-data script', () => {
    const answer = answerFileFor(example('ubuntu-22.04'), { install_script: '#cloud-config\nautoinstall:\n  version: 1\n' });
    expect(answer.content).toBe('#cloud-config\nautoinstall:\n  version: 1\n');
    expect(answer.companions.map((c) => c.name)).toEqual(['meta-data']);
  });

  it('is used even where generation would fail (a disk too small for the generated layout)', () => {
    const tiny = template({ name: 'Debian', version: '12', extra: '<disk><size>512MiB</size></disk>' });
    expect(() => answerFileFor(tiny)).toThrow(expect.objectContaining({ code: 'disk_too_small' }));
    expect(answerFileFor(tiny, { install_script: 'd-i x string y\n' }).source).toBe('install_script');
  });

  it('must be non-empty text', () => {
    expect(() => answerFileFor(example('fedora-40'), { install_script: '  \n' })).toThrow(expect.objectContaining({ code: 'install_script_invalid' }));
    expect(() => answerFileFor(example('fedora-40'), { install_script: { file: 'ks.cfg' } })).toThrow(/must be the text of an answer file, got object/);
    expect(answerFileFor(example('fedora-40'), { install_script: null }).source).toBe('generated');
  });
});

describe('a generated root password', () => {
  it('is returned flagged as generated and never appears when the answer is logged', () => {
    const answer = answerFileFor(template({ name: 'Fedora', version: '40', rootpw: null }));
    const password = answer.rootPassword!.secret.reveal();
    expect(answer.rootPassword!.generated).toBe(true);
    expect(JSON.stringify(answer)).not.toContain(password);
    expect(inspect(answer, { depth: 10 })).not.toContain(password);
    expect(`${answer.rootPassword!.secret}`).toBe('[redacted]');
  });
});
