/** Builders for small TDL documents used by the table-driven tests. */

export const URL_INSTALL = `<install type="url"><url>http://deb.debian.org/debian</url></install>`;

export function os(inner = `${URL_INSTALL}`, head = `<name>Debian</name><version>12</version><arch>x86_64</arch>`): string {
  return `<os>${head}${inner}</os>`;
}

/** A valid template with `extra` added inside <template>; `osXml` replaces the <os> element. */
export function tdl(extra = '', osXml = os()): string {
  return `<template>\n<name>t</name>\n${osXml}\n${extra}\n</template>`;
}
