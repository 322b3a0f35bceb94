import type { TdlError } from './errors.js';
import type { ElementRule } from './schema.js';
import type { XmlElement } from './xml-tree.js';

/**
 * Checks an element tree against the closed schema: unknown, missing and
 * repeated elements and attributes, and stray text. Reports every problem,
 * never stops at the first.
 */
export function checkStructure(el: XmlElement, rule: ElementRule, path: string, errors: TdlError[]): void {
  const at = { path, line: el.line, col: el.col };

  for (const name of el.attrs.keys()) {
    if (!(name in rule.attrs)) {
      const allowed = Object.keys(rule.attrs);
      errors.push({
        code: 'unexpected_attribute',
        ...at,
        message: `unexpected attribute "${name}"; ${allowed.length ? `allowed: ${allowed.join(', ')}` : `<${el.name}> takes no attributes`}`,
      });
    }
  }
  for (const [name, need] of Object.entries(rule.attrs)) {
    if (need === 'required' && !el.attrs.has(name)) {
      errors.push({ code: 'missing_attribute', ...at, message: `missing required attribute "${name}"` });
    }
  }

  if (rule.content === 'elements' && el.text.trim() !== '') {
    errors.push({
      code: 'unexpected_text',
      ...at,
      message: `unexpected text "${excerpt(el.text.trim())}"; <${el.name}> holds only elements`,
    });
  }

  const seen = new Map<string, number>();
  for (const child of el.children) {
    const childRule = rule.children[child.name];
    const n = (seen.get(child.name) ?? 0) + 1;
    seen.set(child.name, n);
    if (!childRule) {
      const expected = Object.keys(rule.children);
      errors.push({
        code: 'unexpected_element',
        path: `${path}/${child.name}`,
        line: child.line,
        col: child.col,
        message: expected.length
          ? `unexpected element <${child.name}>; expected one of ${expected.map((e) => `<${e}>`).join(', ')}`
          : `unexpected element <${child.name}>; <${el.name}> holds only text`,
      });
      continue;
    }
    const childPath = childRule.repeat ? `${path}/${child.name}[${n}]` : `${path}/${child.name}`;
    if (!childRule.repeat && n > 1) {
      const first = el.children.find((c) => c.name === child.name)!;
      errors.push({
        code: 'duplicate_element',
        path: `${path}/${child.name}[${n}]`,
        line: child.line,
        col: child.col,
        message: `<${child.name}> may appear only once in <${el.name}> (first at line ${first.line})`,
      });
      continue;
    }
    checkStructure(child, childRule.rule, childPath, errors);
  }

  for (const [name, childRule] of Object.entries(rule.children)) {
    if (childRule.required && !seen.has(name)) {
      errors.push({ code: 'missing_element', ...at, message: `missing required element <${name}>` });
    }
  }
}

export function excerpt(s: string, max = 40): string {
  const one = s.replace(/\s+/g, ' ');
  return one.length > max ? `${one.slice(0, max)}…` : one;
}
