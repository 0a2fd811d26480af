-- +goose Up
-- The revocation feed reads sessions by revocation time; only revoked rows
-- are indexed, so live sessions cost the index nothing.
CREATE INDEX sessions_revoked_at ON sessions (revoked_at, id) WHERE revoked_at IS NOT NULL;

-- +goose Down
DROP INDEX sessions_revoked_at;
