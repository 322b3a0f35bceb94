export * from './errors.js';
export * from './image.js';
export * from './kinds.js';
export * from './status.js';
