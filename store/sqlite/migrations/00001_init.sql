-- +goose Up
-- Times are Unix microseconds (the engine's clock, microsecond precision);
-- ids are 16-byte UUIDs; hashes are 32-byte SHA-256 digests.
CREATE TABLE users (
    id            BLOB    NOT NULL PRIMARY KEY,
    email         TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    password_hash TEXT    NOT NULL,
    full_name     TEXT    NOT NULL DEFAULT '',
    role          TEXT    NOT NULL CHECK (role IN ('user', 'admin')),
    is_active     INTEGER NOT NULL,
    is_verified   INTEGER NOT NULL,
    token_version INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- One row per sign-in, however often it rotates.
CREATE TABLE sessions (
    id                 BLOB    NOT NULL PRIMARY KEY,
    user_id            BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    mode               TEXT    NOT NULL CHECK (mode IN ('cookie', 'mobile')),
    generation         INTEGER NOT NULL,
    current_hash       BLOB    NOT NULL,
    next_hash          BLOB    NOT NULL,
    rotated_at         INTEGER,
    rotated_user_agent TEXT    NOT NULL DEFAULT '',
    rotated_device_id  TEXT    NOT NULL DEFAULT '',
    created_at         INTEGER NOT NULL,
    last_used_at       INTEGER NOT NULL,
    idle_deadline      INTEGER NOT NULL,
    absolute_deadline  INTEGER NOT NULL,
    revoked_at         INTEGER,
    revoke_reason      TEXT,
    rotation_key_id    TEXT    NOT NULL,
    device_id          TEXT    NOT NULL DEFAULT '',
    device_name        TEXT    NOT NULL DEFAULT '',
    user_agent         TEXT    NOT NULL DEFAULT '',
    ip_address         TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_absolute_deadline ON sessions (absolute_deadline);

-- Append-only; no foreign key, so a deleted user's history stays.
CREATE TABLE security_events (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    user_id    BLOB,
    session_id BLOB,
    kind       TEXT    NOT NULL,
    ip         TEXT    NOT NULL DEFAULT '',
    user_agent TEXT    NOT NULL DEFAULT '',
    detail     TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX security_events_at ON security_events (at);
CREATE INDEX security_events_user ON security_events (user_id, at);
CREATE INDEX security_events_session ON security_events (session_id);

-- Key material sealed under the master key, which is never stored here.
CREATE TABLE keys (
    id          TEXT    NOT NULL PRIMARY KEY,
    purpose     TEXT    NOT NULL CHECK (purpose IN ('signing', 'rotation', 'tag')),
    seq         INTEGER NOT NULL,
    algorithm   TEXT    NOT NULL,
    ciphertext  BLOB    NOT NULL,
    public_key  BLOB,
    created_at  INTEGER NOT NULL,
    activate_at INTEGER NOT NULL,
    retired_at  INTEGER,
    revoked_at  INTEGER,
    UNIQUE (purpose, seq)
) STRICT;

-- +goose Down
DROP TABLE keys;
DROP TABLE security_events;
DROP TABLE sessions;
DROP TABLE users;
