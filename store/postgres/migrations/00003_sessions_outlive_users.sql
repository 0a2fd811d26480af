-- +goose Up
-- A deleted user's sessions are revoked and kept until cleanup (past their
-- absolute deadline), so that the revocation feed still reports them: the
-- foreign key with ON DELETE CASCADE goes.
ALTER TABLE sessions DROP CONSTRAINT sessions_user_id_fkey;

-- +goose Down
DELETE FROM sessions WHERE user_id NOT IN (SELECT id FROM users);
ALTER TABLE sessions ADD CONSTRAINT sessions_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
