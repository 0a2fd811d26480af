-- +goose Up
-- The revocation feed reads sessions by revocation time.
CREATE INDEX sessions_revoked_at ON sessions (revoked_at, id) WHERE revoked_at IS NOT NULL;

-- +goose Down
DROP INDEX sessions_revoked_at;
