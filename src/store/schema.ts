/**
 * The catalog's schema as an ordered list of migrations. `PRAGMA user_version`
 * holds how many have been applied; a migration is never edited once
 * released, only followed by a new one.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: images, their transitions and the build machine's persisted snapshot.
  `
  CREATE TABLE images (
    id                          TEXT PRIMARY KEY,
    kind                        TEXT NOT NULL CHECK (kind IN ('BaseImage', 'TargetImage', 'ProviderImage')),
    status                      TEXT NOT NULL CHECK (status IN ('NEW', 'PENDING', 'BUILDING', 'COMPLETE', 'FAILED', 'CANCELLED', 'DELETING', 'DELETED', 'DELETEFAILED')),
    phase                       TEXT NOT NULL,
    activity                    TEXT NOT NULL,
    error                       TEXT,            -- JSON BuildError, or NULL
    percent_complete            REAL NOT NULL,
    template                    TEXT,
    icicle                      TEXT,
    parameters                  TEXT NOT NULL,   -- JSON object
    properties                  TEXT NOT NULL,   -- JSON object
    base_image_id               TEXT,
    target_image_id             TEXT,
    target                      TEXT,
    provider                    TEXT,
    identifier_on_provider      TEXT,
    provider_account_identifier TEXT,
    body_path                   TEXT,
    deadline                    INTEGER,         -- ms since epoch
    created                     TEXT NOT NULL,   -- ISO-8601 UTC
    updated                     TEXT NOT NULL    -- ISO-8601 UTC
  );
  CREATE INDEX images_by_created ON images (created);
  CREATE INDEX images_by_base ON images (base_image_id) WHERE base_image_id IS NOT NULL;
  CREATE INDEX images_by_target ON images (target_image_id) WHERE target_image_id IS NOT NULL;
  CREATE INDEX images_by_status ON images (status);

  CREATE TABLE transitions (
    image_id   TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL CHECK (seq >= 1),
    from_state TEXT,
    to_state   TEXT NOT NULL,
    event      TEXT NOT NULL,
    at         TEXT NOT NULL,
    UNIQUE (image_id, seq)
  );

  CREATE TABLE snapshots (
    image_id TEXT PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
    json     TEXT NOT NULL,
    updated  TEXT NOT NULL
  );
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
