-- +goose Up
-- The PostgreSQL twin of store/sqlite's 00001_init.sql. Times are timestamptz
-- (microsecond precision, the engine's clock: no column takes DEFAULT now()
-- for a domain time); ids are uuid; hashes are 32-byte SHA-256 digests.
-- Enumerations are text with CHECK constraints rather than ENUM types, so
-- that they sort as text (Keys is ordered by purpose) and adding a value is
-- an ordinary constraint change.
CREATE TABLE users (
    id            uuid        NOT NULL PRIMARY KEY,
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    full_name     text        NOT NULL DEFAULT '',
    role          text        NOT NULL CHECK (role IN ('user', 'admin')),
    is_active     boolean     NOT NULL,
    is_verified   boolean     NOT NULL,
    token_version bigint      NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
-- Emails are unique case-insensitively. The engine stores them lower-cased
-- already; the index keeps the rule even for a writer that does not, and
-- UserByEmail searches on the same expression so that it uses it.
CREATE UNIQUE INDEX users_email ON users (lower(email));

-- One row per sign-in, however often it rotates.
CREATE TABLE sessions (
    id                 uuid        NOT NULL PRIMARY KEY,
    user_id            uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    mode               text        NOT NULL CHECK (mode IN ('cookie', 'mobile')),
    generation         bigint      NOT NULL,
    current_hash       bytea       NOT NULL,
    next_hash          bytea       NOT NULL,
    rotated_at         timestamptz,
    rotated_user_agent text        NOT NULL DEFAULT '',
    rotated_device_id  text        NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL,
    last_used_at       timestamptz NOT NULL,
    idle_deadline      timestamptz NOT NULL,
    absolute_deadline  timestamptz NOT NULL,
    revoked_at         timestamptz,
    revoke_reason      text,
    rotation_key_id    text        NOT NULL,
    device_id          text        NOT NULL DEFAULT '',
    device_name        text        NOT NULL DEFAULT '',
    user_agent         text        NOT NULL DEFAULT '',
    ip_address         text        NOT NULL DEFAULT ''
);
-- A user's sessions (ListSessions, RevokeUserSessions, the cascade from
-- users) and the cleanup of expired ones.
CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_absolute_deadline ON sessions (absolute_deadline);

-- Append-only; no foreign key, so a deleted user's history stays.
CREATE TABLE security_events (
    id         bigint      NOT NULL GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL,
    user_id    uuid,
    session_id uuid,
    kind       text        NOT NULL,
    ip         text        NOT NULL DEFAULT '',
    user_agent text        NOT NULL DEFAULT '',
    detail     text        NOT NULL DEFAULT ''
);
CREATE INDEX security_events_at ON security_events (at);
CREATE INDEX security_events_user ON security_events (user_id, at);
CREATE INDEX security_events_session ON security_events (session_id);

-- Key material sealed under the master key, which is never stored here.
CREATE TABLE keys (
    id          text        NOT NULL PRIMARY KEY,
    purpose     text        NOT NULL CHECK (purpose IN ('signing', 'rotation', 'tag')),
    seq         bigint      NOT NULL,
    algorithm   text        NOT NULL,
    ciphertext  bytea       NOT NULL,
    public_key  bytea,
    created_at  timestamptz NOT NULL,
    activate_at timestamptz NOT NULL,
    retired_at  timestamptz,
    revoked_at  timestamptz,
    UNIQUE (purpose, seq)
);

-- +goose Down
DROP TABLE keys;
DROP TABLE security_events;
DROP TABLE sessions;
DROP TABLE users;
