package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/latchkey-dev/latchkey"
)

const sessionColumns = `id, user_id, mode, generation, current_hash, next_hash, rotated_at, rotated_user_agent,
	rotated_device_id, created_at, last_used_at, idle_deadline, absolute_deadline, revoked_at, revoke_reason,
	rotation_key_id, device_id, device_name, user_agent, ip_address`

func scanSession(row pgx.Row) (*latchkey.Session, error) {
	var s latchkey.Session
	var gen int64
	var rotated, revoked *time.Time
	var reason *string
	err := row.Scan(&s.ID, &s.UserID, &s.Mode, &gen, &s.CurrentHash, &s.NextHash, &rotated, &s.RotatedUserAgent,
		&s.RotatedDeviceID, &s.CreatedAt, &s.LastUsedAt, &s.IdleDeadline, &s.AbsoluteDeadline, &revoked, &reason,
		&s.RotationKeyID, &s.DeviceID, &s.DeviceName, &s.UserAgent, &s.IPAddress)
	if err != nil {
		return nil, noRows(err)
	}
	s.Generation = uint64(gen)
	s.RotatedAt, s.RevokedAt = fromNull(rotated), fromNull(revoked)
	s.CreatedAt, s.LastUsedAt = s.CreatedAt.UTC(), s.LastUsedAt.UTC()
	s.IdleDeadline, s.AbsoluteDeadline = s.IdleDeadline.UTC(), s.AbsoluteDeadline.UTC()
	if reason != nil {
		s.RevokeReason = latchkey.RevokeReason(*reason)
	}
	return &s, nil
}

func scanSessions(rows pgx.Rows) ([]*latchkey.Session, error) {
	defer rows.Close()
	out := []*latchkey.Session{}
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// CreateSession implements latchkey.Store.
func (s *Store) CreateSession(ctx context.Context, x *latchkey.Session, userVersion int64) error {
	var reason any
	if x.RevokeReason != "" {
		reason = string(x.RevokeReason)
	}
	var inserted int64
	err := s.write(ctx, func(q querier) error {
		// FOR SHARE makes the check wait for a concurrent token-version bump
		// (logout-all, password change, deactivation) to commit and then
		// re-read the row: an unlocked read would see the old version, insert,
		// and the bump's revoking UPDATE, which cannot see this uncommitted
		// row, would miss it.
		tag, err := q.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`)
			SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20
			WHERE EXISTS (SELECT 1 FROM users WHERE id = $2 AND token_version = $21 FOR SHARE)`,
			x.ID, x.UserID, string(x.Mode), int64(x.Generation), x.CurrentHash, x.NextHash, nullTime(x.RotatedAt),
			x.RotatedUserAgent, x.RotatedDeviceID, x.CreatedAt, x.LastUsedAt, x.IdleDeadline,
			x.AbsoluteDeadline, nullTime(x.RevokedAt), reason, x.RotationKeyID, x.DeviceID, x.DeviceName,
			x.UserAgent, x.IPAddress, userVersion)
		inserted = tag.RowsAffected()
		return err
	})
	if sqlState(err) == codeForeignKeyViolation {
		return fmt.Errorf("postgres: create session: user %s: %w", x.UserID, latchkey.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("postgres: create session %s: %w", x.ID, err)
	}
	if inserted == 0 {
		return fmt.Errorf("postgres: create session: user %s at token version %d: %w", x.UserID, userVersion, latchkey.ErrNotFound)
	}
	return nil
}

const sessionByIDSQL = `SELECT ` + sessionColumns + ` FROM sessions WHERE id = $1`

// SessionByID implements latchkey.Store.
func (s *Store) SessionByID(ctx context.Context, id uuid.UUID) (*latchkey.Session, error) {
	x, err := scanSession(s.q().QueryRow(ctx, sessionByIDSQL, id))
	if err != nil {
		return nil, fmt.Errorf("postgres: session %s: %w", id, err)
	}
	return x, nil
}

// rotateSQL is the rotation: one UPDATE … FROM users … RETURNING, so the
// condition, the write and the user fields the access token needs take one
// statement and one round trip. %s is the hash column the token is matched
// against (current_hash, or next_hash to recover a lost rotation).
//
// Under READ COMMITTED, concurrent rotations of one session queue on its row
// lock; when the holder commits, PostgreSQL re-evaluates this WHERE clause
// against the row's new version (EvalPlanQual) and, the generation having
// moved on, updates nothing. So exactly one of them advances the session,
// whichever connection or process it came from. docs/POSTGRES.md has the
// details.
//
// The new hashes depend on the session's rotation key; $12 lists the keys the
// engine offers, $2 and $3 the hashes under each, and array_position picks the
// pair for the key the row has.
const rotateSQL = `UPDATE sessions s SET
		generation = $1,
		current_hash = ($2::bytea[])[array_position($12::text[], s.rotation_key_id)],
		next_hash = ($3::bytea[])[array_position($12::text[], s.rotation_key_id)],
		rotated_at = $4, last_used_at = $4,
		rotated_user_agent = $5, rotated_device_id = $6, idle_deadline = LEAST($7, s.absolute_deadline)
	FROM users u
	WHERE s.id = $8 AND s.generation = $9 AND s.%s = $10 AND s.mode = $11 AND s.rotation_key_id = ANY($12::text[])
		AND s.revoked_at IS NULL AND s.idle_deadline > $4 AND s.absolute_deadline > $4
		AND u.id = s.user_id AND u.is_active
	RETURNING s.rotation_key_id, s.user_id, s.generation, s.idle_deadline, s.absolute_deadline, u.role, u.token_version`

var (
	rotateCurrentSQL = fmt.Sprintf(rotateSQL, "current_hash")
	rotateNextSQL    = fmt.Sprintf(rotateSQL, "next_hash")
)

// RotateSession implements latchkey.Store; see rotateSQL.
func (s *Store) RotateSession(ctx context.Context, r latchkey.Rotation) (*latchkey.Rotated, error) {
	query := rotateCurrentSQL
	if r.MatchNext {
		query = rotateNextSQL
	}
	var ids []string
	var curs, nexts [][]byte
	for _, k := range r.Keys() {
		ids, curs, nexts = append(ids, k.RotationKeyID), append(curs, k.CurrentHash), append(nexts, k.NextHash)
	}
	var out latchkey.Rotated
	var gen int64
	err := s.write(ctx, func(q querier) error {
		return q.QueryRow(ctx, query,
			int64(r.To), curs, nexts, r.Now, r.UserAgent, r.DeviceID, r.IdleDeadline,
			r.ID, int64(r.From), r.Hash, string(r.Mode), ids,
		).Scan(&out.RotationKeyID, &out.UserID, &gen, &out.IdleDeadline, &out.AbsoluteDeadline, &out.Role, &out.TokenVersion)
	})
	if err = noRows(err); errors.Is(err, latchkey.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: rotate session %s: %w", r.ID, err)
	}
	out.Generation = uint64(gen)
	out.IdleDeadline, out.AbsoluteDeadline = out.IdleDeadline.UTC(), out.AbsoluteDeadline.UTC()
	return &out, nil
}

// graceSQL appends the grace_answer event only if, in the same statement,
// the session is still at the generation and hash the engine verified, is
// unrevoked and within both deadlines, and its user is active. Both parts
// of the statement read one snapshot, so the check and the append cannot
// disagree; the event's user is the session's, as in the SQLite store.
const graceSQL = `WITH cur AS (
		SELECT s.id, s.user_id, s.idle_deadline, s.absolute_deadline, u.role, u.token_version
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id = $1 AND s.generation = $2 AND s.current_hash = $3 AND s.revoked_at IS NULL
			AND s.idle_deadline > $4 AND s.absolute_deadline > $4 AND u.is_active
	), ev AS (
		INSERT INTO security_events (at, user_id, session_id, kind, ip, user_agent, detail)
		SELECT $4, cur.user_id, cur.id, $5, $6, $7, $8 FROM cur
		RETURNING id
	)
	SELECT ev.id, cur.user_id, cur.idle_deadline, cur.absolute_deadline, cur.role, cur.token_version
	FROM ev, cur`

// RecordGraceAnswer implements latchkey.Store; see graceSQL.
func (s *Store) RecordGraceAnswer(ctx context.Context, gen uint64, hash []byte, e *latchkey.Event) (*latchkey.Rotated, error) {
	var out latchkey.Rotated
	var id int64
	err := s.write(ctx, func(q querier) error {
		return q.QueryRow(ctx, graceSQL, e.SessionID, int64(gen), hash, e.At, string(e.Kind), e.IP, e.UserAgent, e.Detail).
			Scan(&id, &out.UserID, &out.IdleDeadline, &out.AbsoluteDeadline, &out.Role, &out.TokenVersion)
	})
	if err = noRows(err); errors.Is(err, latchkey.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: grace answer for session %s: %w", e.SessionID, err)
	}
	e.ID = id
	out.Generation = gen
	out.IdleDeadline, out.AbsoluteDeadline = out.IdleDeadline.UTC(), out.AbsoluteDeadline.UTC()
	return &out, nil
}

// listSessionsSQL reads a user's sessions through sessions_user (user_id,
// created_at); a user has few enough that filtering and sorting them is
// cheap.
const listSessionsSQL = `SELECT ` + sessionColumns + ` FROM sessions
	WHERE user_id = $1 AND revoked_at IS NULL AND idle_deadline > $2 AND absolute_deadline > $2
	ORDER BY created_at DESC, id`

// ListSessions implements latchkey.Store.
func (s *Store) ListSessions(ctx context.Context, userID uuid.UUID, now time.Time) ([]*latchkey.Session, error) {
	rows, err := s.q().Query(ctx, listSessionsSQL, userID, now)
	if err != nil {
		return nil, fmt.Errorf("postgres: sessions of user %s: %w", userID, err)
	}
	out, err := scanSessions(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: sessions of user %s: %w", userID, err)
	}
	return out, nil
}

// RevokeSession implements latchkey.Store. Only an unrevoked session
// matches, so of two concurrent revocations the first keeps its time and
// reason and the second, re-checking the row after the first commits,
// reports ErrNotFound.
func (s *Store) RevokeSession(ctx context.Context, id uuid.UUID, reason latchkey.RevokeReason, now time.Time) error {
	var n int64
	err := s.write(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `UPDATE sessions SET revoked_at = $1, revoke_reason = $2
			WHERE id = $3 AND revoked_at IS NULL`, now, string(reason), id)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: revoke session %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: revoke session %s: %w", id, latchkey.ErrNotFound)
	}
	return nil
}

// RevokeUserSessions implements latchkey.Store.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, except uuid.UUID, reason latchkey.RevokeReason, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `UPDATE sessions SET revoked_at = $1, revoke_reason = $2
			WHERE user_id = $3 AND id <> $4 AND revoked_at IS NULL`, now, string(reason), userID, except)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: revoke sessions of user %s: %w", userID, err)
	}
	return int(n), nil
}

// The revocation feed. The row comparison (revoked_at, id) > (cursor) is
// one range scan of the partial index sessions_revoked_at; the zero cursor,
// which has no lower bound, gets its own statement rather than an OR that
// would keep the planner from using the bound.
const (
	revokedFirstSQL = `SELECT ` + sessionColumns + ` FROM sessions
		WHERE revoked_at IS NOT NULL
		ORDER BY revoked_at, id LIMIT $1`
	revokedSinceSQL = `SELECT ` + sessionColumns + ` FROM sessions
		WHERE revoked_at IS NOT NULL AND (revoked_at, id) > ($1, $2)
		ORDER BY revoked_at, id LIMIT $3`
)

// RevokedSince implements latchkey.Store; see revokedSinceSQL.
func (s *Store) RevokedSince(ctx context.Context, after latchkey.RevocationCursor, limit int) ([]*latchkey.Session, error) {
	var rows pgx.Rows
	var err error
	if after.At.IsZero() {
		rows, err = s.q().Query(ctx, revokedFirstSQL, limit)
	} else {
		rows, err = s.q().Query(ctx, revokedSinceSQL, after.At, after.ID, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: revoked sessions: %w", err)
	}
	out, err := scanSessions(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: revoked sessions: %w", err)
	}
	return out, nil
}

// RevokeSessionsByRotationKey implements latchkey.Store. It is a rare
// administrative write (a compromised rotation key), so it scans the table
// rather than keep an index on rotation_key_id up to date on every sign-in.
func (s *Store) RevokeSessionsByRotationKey(ctx context.Context, keyID string, reason latchkey.RevokeReason, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `UPDATE sessions SET revoked_at = $1, revoke_reason = $2
			WHERE rotation_key_id = $3 AND revoked_at IS NULL`, now, string(reason), keyID)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: revoke sessions of key %s: %w", keyID, err)
	}
	return int(n), nil
}

// deleteSessionsSQL is one cleanup batch: the oldest expired sessions,
// found through sessions_absolute_deadline, deleted by primary key. The ids
// go through an array rather than `id IN (SELECT …)`: for the generic plan
// of a prepared statement PostgreSQL guesses that LIMIT $2 keeps a tenth of
// the table and joins the batch to the table with a sequential scan, while
// `id = ANY(array)` is always a primary-key probe per id.
const deleteSessionsSQL = `DELETE FROM sessions WHERE id = ANY (ARRAY(
	SELECT id FROM sessions WHERE absolute_deadline < $1 ORDER BY absolute_deadline LIMIT $2))`

// DeleteSessionsBefore implements latchkey.Store, a batch at a time so that
// cleanup never holds many row locks or writes a huge transaction.
func (s *Store) DeleteSessionsBefore(ctx context.Context, t time.Time, limit int) (int, error) {
	var n int64
	err := s.write(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, deleteSessionsSQL, t, limit)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: delete sessions: %w", err)
	}
	return int(n), nil
}
