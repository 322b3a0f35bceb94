import { createHash, randomInt } from 'node:crypto';

/**
 * SHA-512 crypt (`$6$`), as glibc's crypt(3), `mkpasswd -m sha-512` and
 * `openssl passwd -6` compute it, following Ulrich Drepper's specification
 * ("Unix crypt using SHA-256 and SHA-512"). Installers accept these hashes
 * (`rootpw --iscrypted`, `passwd/root-password-crypted`, `usermod -p`), so
 * the plain password never appears in an answer file.
 */

const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ROUNDS_DEFAULT = 5000;
const ROUNDS_MIN = 1000;
const ROUNDS_MAX = 999_999_999;
const SALT_MAX = 16;

/** A random 16-character salt from the crypt alphabet. */
export function randomSalt(): string {
  let salt = '';
  for (let i = 0; i < SALT_MAX; i++) salt += CRYPT_ALPHABET[randomInt(CRYPT_ALPHABET.length)];
  return salt;
}

/**
 * Hashes `password` with SHA-512 crypt. `salt` may be a bare salt, or a
 * setting string such as `$6$rounds=10000$salt`; salts longer than 16
 * characters are cut, rounds are clamped to 1000…999999999 as glibc does.
 * An explicit `rounds` argument wins over one in the setting string.
 */
export function sha512Crypt(password: string | Buffer, salt: string = randomSalt(), rounds?: number): string {
  let setting = salt.startsWith('$6$') ? salt.slice(3) : salt;
  let roundsCount = ROUNDS_DEFAULT;
  let roundsCustom = false;
  const roundsMatch = /^rounds=(\d+)\$/.exec(setting);
  if (roundsMatch) {
    roundsCount = Number(roundsMatch[1]);
    roundsCustom = true;
    setting = setting.slice(roundsMatch[0].length);
  }
  if (rounds !== undefined) {
    roundsCount = rounds;
    roundsCustom = true;
  }
  roundsCount = Math.min(ROUNDS_MAX, Math.max(ROUNDS_MIN, Math.floor(roundsCount)));
  const saltText = setting.split('$')[0]!.slice(0, SALT_MAX);

  const p = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  const s = Buffer.from(saltText, 'utf8');
  const sha512 = (...parts: Buffer[]) => {
    const h = createHash('sha512');
    for (const part of parts) h.update(part);
    return h.digest();
  };

  // Steps 4–8: the alternate sum B = H(P S P).
  const b = sha512(p, s, p);
  // Steps 1–3, 9–12: A = H(P S B-repeated-to-len(P) then P-or-B per bit of len(P)).
  const a = createHash('sha512').update(p).update(s);
  a.update(repeatTo(b, p.length));
  for (let n = p.length; n > 0; n >>= 1) a.update(n & 1 ? b : p);
  const aDigest = a.digest();

  // Steps 13–16: P' from DP = H(P repeated len(P) times).
  const dpHash = createHash('sha512');
  for (let i = 0; i < p.length; i++) dpHash.update(p);
  const pSeq = repeatTo(dpHash.digest(), p.length);
  // Steps 17–20: S' from DS = H(S repeated 16 + A[0] times).
  const dsHash = createHash('sha512');
  for (let i = 0; i < 16 + aDigest[0]!; i++) dsHash.update(s);
  const sSeq = repeatTo(dsHash.digest(), s.length);

  // Step 21: the rounds.
  let c = aDigest;
  for (let i = 0; i < roundsCount; i++) {
    const h = createHash('sha512');
    h.update(i & 1 ? pSeq : c);
    if (i % 3) h.update(sSeq);
    if (i % 7) h.update(pSeq);
    h.update(i & 1 ? c : pSeq);
    c = h.digest();
  }

  const prefix = roundsCustom ? `$6$rounds=${roundsCount}$` : '$6$';
  return `${prefix}${saltText}$${encodeSha512Digest(c)}`;
}

/** Is `text` shaped like a `$6$` hash (so it can be passed on as already crypted)? */
export function isSha512Crypt(text: string): boolean {
  return /^\$6\$(rounds=\d+\$)?[./0-9A-Za-z]{0,16}\$[./0-9A-Za-z]{86}$/.test(text);
}

function repeatTo(block: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += block.length) block.copy(out, i, 0, Math.min(block.length, length - i));
  return out;
}

/** Step 22: the digest's bytes, taken in the specification's permuted order, in the crypt base-64 alphabet. */
function encodeSha512Digest(c: Buffer): string {
  let out = '';
  const put = (b2: number, b1: number, b0: number, chars: number) => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let i = 0; i < chars; i++) {
      out += CRYPT_ALPHABET[w & 0x3f];
      w >>= 6;
    }
  };
  for (let i = 0; i < 21; i++) {
    const x = c[i]!;
    const y = c[i + 21]!;
    const z = c[i + 42]!;
    if (i % 3 === 0) put(x, y, z, 4);
    else if (i % 3 === 1) put(y, z, x, 4);
    else put(z, x, y, 4);
  }
  put(0, 0, c[63]!, 2);
  return out;
}
