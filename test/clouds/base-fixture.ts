// The tests' Debian bases are built by the same code as the targets benchmark's (bench/cloud-base.ts).
export { ensureBaseImage, FIXTURE_DIR, FIXTURE_ROOTPW, MERGED_TARGETS, type BaseFixture, type FixtureVariant } from '../../bench/cloud-base.js';
