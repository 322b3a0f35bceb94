export { parseTdl, parseTdlOrThrow, type ParseOptions, type ParseResult } from './parse.js';
export { formatTdlError, TemplateInvalidError, type TdlError, type TdlErrorCode } from './errors.js';
export { DEFAULT_XML_LIMITS, type XmlLimits } from './xml-guard.js';
export * from './model.js';
