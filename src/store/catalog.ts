import { chmodSync, closeSync, constants, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.js';
import { SecretBox } from './secrets.js';
import { FINAL_STATUSES, type ImageKind, type ImageRecord, type ImageStatus, type TransitionRecord } from '../model/index.js';

/** The fields of an image that may change after it is inserted. `updated` is always set by the store. */
export type ImagePatch = Partial<Omit<ImageRecord, 'id' | 'kind' | 'created'>>;

export interface ImageFilter {
  kind?: ImageKind;
  baseImageId?: string;
  targetImageId?: string;
  /** Only images whose status is one of these (an empty list matches none). */
  statuses?: ImageStatus[];
}

export interface TransitionInput {
  imageId: string;
  from: string | null;
  to: string;
  event: string;
  /** ISO-8601 UTC; now when omitted. */
  at?: string;
}

type Row = Record<string, unknown>;
type Statement = Database.Statement<unknown[], Row>;

/** Where each field of an ImageRecord lives; a Record over every key, so a new field cannot be forgotten. */
const COLUMN: Record<keyof ImageRecord, string> = {
  id: 'id',
  kind: 'kind',
  status: 'status',
  phase: 'phase',
  activity: 'activity',
  error: 'error',
  percentComplete: 'percent_complete',
  template: 'template',
  icicle: 'icicle',
  parameters: 'parameters',
  properties: 'properties',
  baseImageId: 'base_image_id',
  targetImageId: 'target_image_id',
  target: 'target',
  provider: 'provider',
  identifierOnProvider: 'identifier_on_provider',
  providerAccountIdentifier: 'provider_account_identifier',
  bodyPath: 'body_path',
  deadline: 'deadline',
  created: 'created',
  updated: 'updated',
};
const FIELDS = Object.keys(COLUMN) as (keyof ImageRecord)[];
const JSON_FIELDS: ReadonlySet<keyof ImageRecord> = new Set(['error', 'parameters', 'properties']);
/** Fields a patch may not carry: identity, and `updated`, which the store owns. */
const FIXED_FIELDS: ReadonlySet<string> = new Set(['id', 'kind', 'created', 'updated']);

// Oldest first; rowid breaks ties between images created in the same millisecond.
const ORDER = 'ORDER BY created, rowid';

function nowIso(): string {
  return new Date().toISOString();
}

function toJson(value: unknown, what: string): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (e) {
    throw new StoreError('not_serializable', `${what} cannot be written as JSON: ${(e as Error).message}`, { cause: e });
  }
}

function fromJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new StoreError('store_corrupt', `${what} is not valid JSON`, { cause: e, details: { text: text.slice(0, 200) } });
  }
}

/** A field as stored: JSON fields as text; the template and secret parameters sealed (secrets.ts). */
function encode(field: keyof ImageRecord, value: unknown, box: SecretBox): unknown {
  if (value === null || value === undefined) return value;
  if (field === 'template') return box.seal(value as string);
  if (field === 'parameters') return toJson(box.sealParameters(value as Record<string, unknown>), field);
  if (!JSON_FIELDS.has(field)) return value;
  return toJson(value, field);
}

function sqliteCode(e: unknown): string | undefined {
  return e instanceof Database.SqliteError ? e.code : undefined;
}

/** Turns SQLite's constraint failures into the store's codes; anything else is rethrown as it is. */
function translate(e: unknown, id: string): never {
  const code = sqliteCode(e);
  if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new StoreError('image_exists', `image ${id} already exists`, { cause: e });
  if (code === 'SQLITE_CONSTRAINT_CHECK' || code === 'SQLITE_CONSTRAINT_NOTNULL') {
    throw new StoreError('invalid_record', `image ${id}: ${(e as Error).message}`, { cause: e });
  }
  throw e;
}

/**
 * The image catalog: one SQLite file holding every image record, the
 * transitions of its build machine and the machine's persisted snapshot.
 *
 * A transition, the image row change it causes and the new snapshot are
 * written in one transaction, so after a crash the three always agree and a
 * restored machine resumes exactly where the row says it is.
 */
export class Catalog {
  private readonly statements = new Map<string, Statement>();
  private readonly recordTransitionTx: Database.Transaction<
    (t: TransitionInput, at: string, patch: ImagePatch, snapshot: unknown) => TransitionRecord
  >;
  private readonly updateImageTx: Database.Transaction<(id: string, patch: ImagePatch) => ImageRecord>;
  private readonly deleteImageTx: Database.Transaction<(id: string) => void>;

  private constructor(
    private readonly db: Database.Database,
    private readonly box: SecretBox,
  ) {
    this.recordTransitionTx = db.transaction((t: TransitionInput, at: string, patch: ImagePatch, snapshot: unknown) => {
      if (!this.exists(t.imageId)) throw new StoreError('image_not_found', `no image ${t.imageId}`);
      const last = this.stmt('SELECT MAX(seq) AS seq FROM transitions WHERE image_id = ?').get(t.imageId)?.seq;
      const seq = (typeof last === 'number' ? last : 0) + 1;
      this.stmt('INSERT INTO transitions (image_id, seq, from_state, to_state, event, at) VALUES (?, ?, ?, ?, ?, ?)').run(
        t.imageId,
        seq,
        t.from,
        t.to,
        t.event,
        at,
      );
      this.applyPatch(t.imageId, { ...patch, phase: t.to }, at);
      // Serialized inside the transaction on purpose: a snapshot that cannot be
      // written takes the transition and the row change down with it.
      const json = toJson(snapshot, `snapshot of ${t.imageId}`);
      if (json !== undefined) {
        this.stmt(
          'INSERT INTO snapshots (image_id, json, updated) VALUES (?, ?, ?) ON CONFLICT (image_id) DO UPDATE SET json = excluded.json, updated = excluded.updated',
        ).run(t.imageId, json, at);
      }
      return { imageId: t.imageId, seq, from: t.from, to: t.to, event: t.event, at };
    });
    this.updateImageTx = db.transaction((id: string, patch: ImagePatch) => {
      this.applyPatch(id, patch, nowIso());
      return this.getImage(id)!;
    });
    this.deleteImageTx = db.transaction((id: string) => {
      this.stmt('DELETE FROM snapshots WHERE image_id = ?').run(id);
      this.stmt('DELETE FROM transitions WHERE image_id = ?').run(id);
      if (this.stmt('DELETE FROM images WHERE id = ?').run(id).changes === 0) {
        throw new StoreError('image_not_found', `no image ${id}`);
      }
    });
  }

  /** Opens (creating it and its directory if needed) the catalog at `file`, and brings its schema up to date. */
  static open(file: string): Catalog {
    if (file !== ':memory:') createPrivately(file);
    const db = new Database(file);
    try {
      db.pragma('journal_mode = WAL');
      // In WAL mode NORMAL loses no committed transaction when the process dies,
      // only (possibly) the last ones when the machine loses power.
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db);
      return new Catalog(db, SecretBox.forCatalog(file));
    } catch (e) {
      db.close();
      const code = sqliteCode(e);
      if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
        throw new StoreError('store_corrupt', `${file} is not a usable catalog: ${(e as Error).message}`, { cause: e });
      }
      throw e;
    }
  }

  insertImage(rec: ImageRecord): void {
    const values = FIELDS.map((f) => encode(f, rec[f], this.box));
    const sql = `INSERT INTO images (${FIELDS.map((f) => COLUMN[f]).join(', ')}) VALUES (${FIELDS.map(() => '?').join(', ')})`;
    try {
      this.stmt(sql).run(...values);
    } catch (e) {
      translate(e, rec.id);
    }
  }

  getImage(id: string): ImageRecord | null {
    const row = this.stmt('SELECT * FROM images WHERE id = ?').get(id);
    return row ? this.decodeImage(row) : null;
  }

  /** Images matching every given criterion, oldest first. */
  listImages(filter: ImageFilter = {}): ImageRecord[] {
    const rows = this.stmt(
      `SELECT * FROM images
       WHERE (@kind IS NULL OR kind = @kind)
         AND (@base IS NULL OR base_image_id = @base)
         AND (@target IS NULL OR target_image_id = @target)
         AND (@statuses IS NULL OR status IN (SELECT value FROM json_each(@statuses)))
       ${ORDER}`,
    ).all({
      kind: filter.kind ?? null,
      base: filter.baseImageId ?? null,
      target: filter.targetImageId ?? null,
      statuses: filter.statuses ? JSON.stringify(filter.statuses) : null,
    });
    return rows.map((r) => this.decodeImage(r));
  }

  /** Changes the given fields and sets `updated` to now; returns the record as stored. */
  updateImage(id: string, patch: ImagePatch): ImageRecord {
    return this.updateImageTx.immediate(id, patch);
  }

  /**
   * Appends a transition of the image's build machine (seq = last + 1), applies
   * `patch` with `phase = to` and `updated = at` to the image, and stores
   * `snapshot` as its persisted snapshot — all or nothing. A `snapshot` of
   * `undefined` keeps the stored one.
   */
  recordTransition(t: TransitionInput, patch: ImagePatch, snapshot: unknown): TransitionRecord {
    return this.recordTransitionTx.immediate(t, t.at ?? nowIso(), patch, snapshot);
  }

  /** Every transition of the image, oldest first (empty for an unknown id). */
  transitions(imageId: string): TransitionRecord[] {
    return this.stmt('SELECT image_id, seq, from_state, to_state, event, at FROM transitions WHERE image_id = ? ORDER BY seq')
      .all(imageId)
      .map((r) => ({
        imageId: r.image_id as string,
        seq: r.seq as number,
        from: r.from_state as string | null,
        to: r.to_state as string,
        event: r.event as string,
        at: r.at as string,
      }));
  }

  /** The persisted snapshot written with the image's last transition, or null. */
  loadSnapshot(imageId: string): unknown | null {
    const row = this.stmt('SELECT json FROM snapshots WHERE image_id = ?').get(imageId);
    return row ? fromJson(row.json as string, `snapshot of ${imageId}`) : null;
  }

  /** Images whose status is not final: the builds to resume or fail after a restart. Oldest first. */
  unfinished(): ImageRecord[] {
    return this.stmt(`SELECT * FROM images WHERE status NOT IN (SELECT value FROM json_each(?)) ${ORDER}`)
      .all(JSON.stringify(FINAL_STATUSES))
      .map((r) => this.decodeImage(r));
  }

  /** The newest COMPLETE image of `kind` with a body whose `properties.cache_key` is `key`, or null. */
  findCached(kind: ImageKind, key: string): ImageRecord | null {
    const row = this.stmt(
      `SELECT * FROM images
       WHERE kind = ? AND status = 'COMPLETE' AND body_path IS NOT NULL AND json_extract(properties, '$.cache_key') = ?
       ORDER BY created DESC LIMIT 1`,
    ).get(kind, key);
    return row ? this.decodeImage(row) : null;
  }

  /** The images made directly from this one: the target images of a base, the provider images of a target. */
  children(id: string): ImageRecord[] {
    return this.stmt(
      `SELECT * FROM images
       WHERE (kind = 'TargetImage' AND base_image_id = @id) OR (kind = 'ProviderImage' AND target_image_id = @id)
       ${ORDER}`,
    )
      .all({ id })
      .map((r) => this.decodeImage(r));
  }

  /** Removes the image row with its transitions and snapshot. Children are the caller's business. */
  deleteImage(id: string): void {
    this.deleteImageTx.immediate(id);
  }

  /** SQLite's integrity and foreign-key checks; an empty list means the file is sound. */
  integrityCheck(): string[] {
    const problems = (this.db.pragma('integrity_check') as { integrity_check: string }[])
      .map((r) => r.integrity_check)
      .filter((m) => m !== 'ok');
    for (const r of this.db.pragma('foreign_key_check') as { table: string; rowid: number; parent: string }[]) {
      problems.push(`${r.table} row ${r.rowid} refers to a missing ${r.parent} row`);
    }
    return problems;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private exists(id: string): boolean {
    return this.stmt('SELECT 1 AS one FROM images WHERE id = ?').get(id) !== undefined;
  }

  private applyPatch(id: string, patch: ImagePatch, updated: string): void {
    const sets: string[] = [];
    const values: unknown[] = [];
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined) continue;
      if (!(key in COLUMN) || FIXED_FIELDS.has(key)) {
        throw new StoreError('invalid_record', `image ${id}: field ${key} cannot be patched`);
      }
      const field = key as keyof ImageRecord;
      sets.push(`${COLUMN[field]} = ?`);
      values.push(encode(field, value, this.box));
    }
    sets.push('updated = ?');
    values.push(updated);
    let changes: number;
    try {
      changes = this.stmt(`UPDATE images SET ${sets.join(', ')} WHERE id = ?`).run(...values, id).changes;
    } catch (e) {
      translate(e, id);
    }
    if (changes === 0) throw new StoreError('image_not_found', `no image ${id}`);
  }

  private decodeImage(row: Row): ImageRecord {
    return decodeImage(row, this.box);
  }

  /** Prepared once per SQL text: patches of the same shape share a statement. */
  private stmt(sql: string): Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare<unknown[], Row>(sql);
      this.statements.set(sql, s);
    }
    return s;
  }
}

/**
 * The catalog holds every template and its parameters: its directory is
 * created 0700 and the file 0600 before SQLite opens it (SQLite gives its
 * -wal and -shm files the database's own mode), and an older, wider file is
 * narrowed.
 */
function createPrivately(file: string): void {
  const dir = dirname(file);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  closeSync(openSync(file, constants.O_RDWR | constants.O_CREAT, 0o600));
  chmodSync(file, 0o600);
  for (const side of [`${file}-wal`, `${file}-shm`]) if (existsSync(side)) chmodSync(side, 0o600);
}

function migrate(db: Database.Database): void {
  const version = () => db.pragma('user_version', { simple: true }) as number;
  if (version() > SCHEMA_VERSION) {
    throw new StoreError('store_too_new', `catalog schema version ${version()} is newer than this program's ${SCHEMA_VERSION}`);
  }
  for (;;) {
    // Re-read inside the write lock: another process may have migrated meanwhile.
    const done = db
      .transaction(() => {
        const v = version();
        if (v >= SCHEMA_VERSION) return true;
        db.exec(MIGRATIONS[v]!);
        db.pragma(`user_version = ${v + 1}`);
        return false;
      })
      .immediate();
    if (done) return;
  }
}

function decodeImage(row: Row, box: SecretBox): ImageRecord {
  const rec: Record<string, unknown> = {};
  for (const field of FIELDS) {
    const value = row[COLUMN[field]];
    rec[field] = JSON_FIELDS.has(field) && value !== null ? fromJson(value as string, `image ${String(row.id)} ${field}`) : value;
  }
  if (typeof rec.template === 'string') rec.template = box.open(rec.template);
  rec.parameters = box.openParameters(rec.parameters as Record<string, unknown>);
  return rec as unknown as ImageRecord;
}
