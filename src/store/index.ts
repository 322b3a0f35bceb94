/** The image warehouse: the SQLite catalog of images and their build history, and the body files on disk. */
export { Catalog, type ImageFilter, type ImagePatch, type TransitionInput } from './catalog.js';
export { BodyStore, TEMP_FILE_PREFIX } from './bodies.js';
export { StoreError, isStoreError, type StoreErrorCode } from './errors.js';
export { SCHEMA_VERSION } from './schema.js';
export { lockStorage, lockHolder, type StorageLock, type LockHolder } from './lock.js';
