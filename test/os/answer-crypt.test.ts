import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { generateRootPassword, isSha512Crypt, randomSalt, Secret, sha512Crypt } from '../../src/os/answer/index.js';
import { runTool } from './helpers.js';
import { itWithTools, tool } from '../tools.js';

describe('SHA-512 crypt', () => {
  // The test vectors of Drepper's specification ("Unix crypt using SHA-256 and SHA-512"), as glibc checks them.
  it.each([
    ['$6$saltstring', 'Hello world!', '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1'],
    [
      '$6$rounds=10000$saltstringsaltstring',
      'Hello world!',
      '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
    ],
    [
      '$6$rounds=5000$toolongsaltstring',
      'This is just a test',
      '$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0',
    ],
    [
      '$6$rounds=1400$anotherlongsaltstring',
      'a very much longer text to encrypt.  This one even stretches over morethan one line.',
      '$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1',
    ],
    [
      '$6$rounds=77777$short',
      'we have a short salt string but not a short password',
      '$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0',
    ],
    ['$6$rounds=123456$asaltof16chars..', 'a short string', '$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1'],
    ['$6$rounds=10$roundstoolow', 'the minimum number is still observed', '$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.'],
  ])('hashes the specification vector with setting %s', (setting, password, expected) => {
    expect(sha512Crypt(password, setting)).toBe(expected);
  });

  itWithTools([tool('openssl', ['version'])], 'agrees with openssl passwd -6 on a password with non-ASCII characters', () => {
    const password = 'pässwörd with spaces & $igns';
    const salt = 'Ab3./xyzAb3./xyz';
    const r = runTool('openssl', ['passwd', '-6', '-salt', salt, '-stdin'], Buffer.from(`${password}\n`));
    expect(r.status).toBe(0);
    expect(sha512Crypt(password, salt)).toBe(r.stdout.toString('utf8').trim());
  });

  it('salts randomly by default, so equal passwords give different hashes that each verify', () => {
    const a = sha512Crypt('same');
    const b = sha512Crypt('same');
    expect(a).not.toBe(b);
    for (const h of [a, b]) {
      expect(isSha512Crypt(h)).toBe(true);
      const salt = h.split('$')[2]!;
      expect(salt).toHaveLength(16);
      expect(sha512Crypt('same', salt)).toBe(h);
    }
    expect(randomSalt()).toMatch(/^[./0-9A-Za-z]{16}$/);
  });
});

describe('root password secrets', () => {
  it('generates long random passwords', () => {
    const a = generateRootPassword();
    expect(a).toMatch(/^[A-Za-z0-9]{24}$/);
    expect(generateRootPassword()).not.toBe(a);
  });

  it('never shows a secret when printed, interpolated, serialized or inspected', () => {
    const secret = new Secret('hunter2-very-secret');
    expect(`${secret}`).toBe('[redacted]');
    expect(String(secret)).toBe('[redacted]');
    expect(JSON.stringify({ secret })).toBe('{"secret":"[redacted]"}');
    expect(inspect({ secret })).not.toContain('hunter2');
    expect(secret.reveal()).toBe('hunter2-very-secret');
  });
});
