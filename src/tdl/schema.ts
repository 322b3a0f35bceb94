/**
 * The closed structure of a TDL document, as data: which attributes and
 * children each element may carry and how often, and whether it holds text.
 * Value rules (arch names, booleans, sizes, base64…) live in `values.ts`.
 */
export interface ElementRule {
  attrs: Record<string, 'required' | 'optional'>;
  children: Record<string, ChildRule>;
  /** `text`: character data allowed; `elements`: only white space between children. */
  content: 'text' | 'elements';
}

export interface ChildRule {
  required: boolean;
  repeat: boolean;
  rule: ElementRule;
}

const text = (attrs: ElementRule['attrs'] = {}): ElementRule => ({ attrs, children: {}, content: 'text' });
const one = (rule: ElementRule): ChildRule => ({ required: true, repeat: false, rule });
const opt = (rule: ElementRule): ChildRule => ({ required: false, repeat: false, rule });
const many = (rule: ElementRule): ChildRule => ({ required: false, repeat: true, rule });
const list = (item: string, rule: ElementRule): ElementRule => ({ attrs: {}, children: { [item]: many(rule) }, content: 'elements' });

const extraItem = text({ source: 'required', destination: 'required' });

/** `install` lists every child either install type may have; `type`-specific rules are checked in code. */
const install: ElementRule = {
  attrs: { type: 'required' },
  children: {
    url: opt(text()),
    iso: opt(text()),
    md5sum: opt(text()),
    sha1sum: opt(text()),
    sha256sum: opt(text()),
    extras: opt({ attrs: {}, children: { directory: many(extraItem), file: many(extraItem) }, content: 'elements' }),
  },
  content: 'elements',
};

const os: ElementRule = {
  attrs: {},
  children: {
    name: one(text()),
    version: one(text()),
    arch: one(text()),
    install: one(install),
    rootpw: opt(text()),
    key: opt(text()),
    kernelparam: opt(text()),
    icicle: opt({ attrs: {}, children: { extra_command: one(text()) }, content: 'elements' }),
  },
  content: 'elements',
};

const command = text({ name: 'required', type: 'optional', position: 'optional' });

export const TEMPLATE_RULE: ElementRule = {
  attrs: { version: 'optional' },
  children: {
    name: one(text()),
    os: one(os),
    description: opt(text()),
    packages: opt(
      list('package', {
        attrs: { name: 'required' },
        children: { repository: opt(text()), file: opt(text()), arguments: opt(text()) },
        content: 'elements',
      }),
    ),
    repositories: opt(
      list('repository', {
        attrs: { name: 'required' },
        children: { url: one(text()), signed: opt(text()), persisted: opt(text()), sslverify: opt(text()) },
        content: 'elements',
      }),
    ),
    files: opt(list('file', text({ name: 'required', type: 'optional' }))),
    precommands: opt(list('command', command)),
    commands: opt(list('command', command)),
    disk: opt({ attrs: {}, children: { size: one(text()) }, content: 'elements' }),
  },
  content: 'elements',
};
