-- +goose Up
-- A deleted user's sessions are revoked and kept until cleanup (past their
-- absolute deadline), so that the revocation feed still reports them: the
-- foreign key with ON DELETE CASCADE goes. SQLite cannot drop a constraint,
-- so the table is rebuilt.
CREATE TABLE sessions_new (
    id                 BLOB    NOT NULL PRIMARY KEY,
    user_id            BLOB    NOT NULL,
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
INSERT INTO sessions_new SELECT * FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;
CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_absolute_deadline ON sessions (absolute_deadline);
CREATE INDEX sessions_revoked_at ON sessions (revoked_at, id) WHERE revoked_at IS NOT NULL;

-- +goose Down
DELETE FROM sessions WHERE user_id NOT IN (SELECT id FROM users);
CREATE TABLE sessions_old (
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
INSERT INTO sessions_old SELECT * FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_old RENAME TO sessions;
CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_absolute_deadline ON sessions (absolute_deadline);
CREATE INDEX sessions_revoked_at ON sessions (revoked_at, id) WHERE revoked_at IS NOT NULL;
