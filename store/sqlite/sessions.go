package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
)

const sessionColumns = `id, user_id, mode, generation, current_hash, next_hash, rotated_at, rotated_user_agent,
	rotated_device_id, created_at, last_used_at, idle_deadline, absolute_deadline, revoked_at, revoke_reason,
	rotation_key_id, device_id, device_name, user_agent, ip_address`

func scanSession(row scanner) (*latchkey.Session, error) {
	var s latchkey.Session
	var id, userID []byte
	var gen int64
	var rotated, created, used, idle, abs, revoked sql.NullInt64
	var reason sql.NullString
	err := row.Scan(&id, &userID, &s.Mode, &gen, &s.CurrentHash, &s.NextHash, &rotated, &s.RotatedUserAgent,
		&s.RotatedDeviceID, &created, &used, &idle, &abs, &revoked, &reason,
		&s.RotationKeyID, &s.DeviceID, &s.DeviceName, &s.UserAgent, &s.IPAddress)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, latchkey.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	copy(s.ID[:], id)
	copy(s.UserID[:], userID)
	s.Generation = uint64(gen)
	s.RotatedAt, s.CreatedAt, s.LastUsedAt = fromMicros(rotated), fromMicros(created), fromMicros(used)
	s.IdleDeadline, s.AbsoluteDeadline, s.RevokedAt = fromMicros(idle), fromMicros(abs), fromMicros(revoked)
	s.RevokeReason = latchkey.RevokeReason(reason.String)
	return &s, nil
}

// CreateSession implements latchkey.Store.
func (s *Store) CreateSession(ctx context.Context, x *latchkey.Session, userVersion int64) error {
	var reason any
	if x.RevokeReason != "" {
		reason = string(x.RevokeReason)
	}
	res, err := s.writer().ExecContext(ctx, `INSERT INTO sessions (`+sessionColumns+`)
		SELECT ?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?
		WHERE EXISTS (SELECT 1 FROM users WHERE id = ? AND token_version = ?)`,
		x.ID[:], x.UserID[:], string(x.Mode), int64(x.Generation), x.CurrentHash, x.NextHash, micros(x.RotatedAt),
		x.RotatedUserAgent, x.RotatedDeviceID, micros(x.CreatedAt), micros(x.LastUsedAt), micros(x.IdleDeadline),
		micros(x.AbsoluteDeadline), micros(x.RevokedAt), reason, x.RotationKeyID, x.DeviceID, x.DeviceName,
		x.UserAgent, x.IPAddress, x.UserID[:], userVersion)
	if err != nil {
		return fmt.Errorf("sqlite: create session %s: %w", x.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: create session: user %s at token version %d: %w", x.UserID, userVersion, latchkey.ErrNotFound)
	}
	return nil
}

// SessionByID implements latchkey.Store.
func (s *Store) SessionByID(ctx context.Context, id uuid.UUID) (*latchkey.Session, error) {
	x, err := scanSession(s.reader().QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = ?`, id[:]))
	if err != nil {
		return nil, fmt.Errorf("sqlite: session %s: %w", id, err)
	}
	return x, nil
}

// RotateSession implements latchkey.Store as one UPDATE … RETURNING; the
// user's role and token version come from scalar subqueries, since SQLite's
// RETURNING cannot read a joined table.
func (s *Store) RotateSession(ctx context.Context, r latchkey.Rotation) (*latchkey.Rotated, error) {
	hashCol := "current_hash"
	if r.MatchNext {
		hashCol = "next_hash"
	}
	now := r.Now.UnixMicro()
	// The new hashes depend on the session's rotation key: CASE picks the
	// pair for the key the row has, among the rotation's choices.
	keys := r.Keys()
	cur, next, in := "CASE rotation_key_id", "CASE rotation_key_id", ""
	var curArgs, nextArgs, inArgs []any
	for i, k := range keys {
		cur += " WHEN ? THEN ?"
		next += " WHEN ? THEN ?"
		curArgs = append(curArgs, k.RotationKeyID, k.CurrentHash)
		nextArgs = append(nextArgs, k.RotationKeyID, k.NextHash)
		if i > 0 {
			in += ","
		}
		in += "?"
		inArgs = append(inArgs, k.RotationKeyID)
	}
	args := []any{int64(r.To)}
	args = append(args, curArgs...)
	args = append(args, nextArgs...)
	args = append(args, now, now, r.UserAgent, r.DeviceID, r.IdleDeadline.UnixMicro(),
		r.ID[:], int64(r.From), r.Hash, string(r.Mode))
	args = append(args, inArgs...)
	args = append(args, now, now)
	var out latchkey.Rotated
	var userID []byte
	var gen, idle, abs int64
	err := s.writer().QueryRowContext(ctx, `UPDATE sessions SET
			generation = ?, current_hash = `+cur+` END, next_hash = `+next+` END, rotated_at = ?, last_used_at = ?,
			rotated_user_agent = ?, rotated_device_id = ?, idle_deadline = min(?, absolute_deadline)
		WHERE id = ? AND generation = ? AND `+hashCol+` = ? AND mode = ? AND rotation_key_id IN (`+in+`)
			AND revoked_at IS NULL AND idle_deadline > ? AND absolute_deadline > ?
			AND EXISTS (SELECT 1 FROM users u WHERE u.id = sessions.user_id AND u.is_active)
		RETURNING rotation_key_id, user_id, generation, idle_deadline, absolute_deadline,
			(SELECT role FROM users u WHERE u.id = sessions.user_id),
			(SELECT token_version FROM users u WHERE u.id = sessions.user_id)`, args...,
	).Scan(&out.RotationKeyID, &userID, &gen, &idle, &abs, &out.Role, &out.TokenVersion)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, latchkey.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: rotate session %s: %w", r.ID, err)
	}
	copy(out.UserID[:], userID)
	out.Generation = uint64(gen)
	out.IdleDeadline, out.AbsoluteDeadline = time.UnixMicro(idle).UTC(), time.UnixMicro(abs).UTC()
	return &out, nil
}

// RecordGraceAnswer implements latchkey.Store as one INSERT … SELECT that
// writes the event only while the session and its user still qualify.
func (s *Store) RecordGraceAnswer(ctx context.Context, gen uint64, hash []byte, e *latchkey.Event) (*latchkey.Rotated, error) {
	at := e.At.UnixMicro()
	var out latchkey.Rotated
	var userID []byte
	var idle, abs int64
	err := s.writer().QueryRowContext(ctx, `INSERT INTO security_events (at, user_id, session_id, kind, ip, user_agent, detail)
		SELECT ?, s.user_id, s.id, ?, ?, ?, ? FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id = ? AND s.generation = ? AND s.current_hash = ? AND s.revoked_at IS NULL
			AND s.idle_deadline > ? AND s.absolute_deadline > ? AND u.is_active
		RETURNING id, user_id,
			(SELECT idle_deadline FROM sessions s WHERE s.id = session_id),
			(SELECT absolute_deadline FROM sessions s WHERE s.id = session_id),
			(SELECT role FROM users u WHERE u.id = user_id),
			(SELECT token_version FROM users u WHERE u.id = user_id)`,
		at, string(e.Kind), e.IP, e.UserAgent, e.Detail, e.SessionID[:], int64(gen), hash, at, at,
	).Scan(&e.ID, &userID, &idle, &abs, &out.Role, &out.TokenVersion)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, latchkey.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: grace answer for session %s: %w", e.SessionID, err)
	}
	copy(out.UserID[:], userID)
	out.Generation = gen
	out.IdleDeadline, out.AbsoluteDeadline = time.UnixMicro(idle).UTC(), time.UnixMicro(abs).UTC()
	return &out, nil
}

// ListSessions implements latchkey.Store.
func (s *Store) ListSessions(ctx context.Context, userID uuid.UUID, now time.Time) ([]*latchkey.Session, error) {
	n := now.UnixMicro()
	rows, err := s.reader().QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = ? AND revoked_at IS NULL AND idle_deadline > ? AND absolute_deadline > ?
		ORDER BY created_at DESC, id`, userID[:], n, n)
	if err != nil {
		return nil, fmt.Errorf("sqlite: sessions of user %s: %w", userID, err)
	}
	defer rows.Close()
	out := []*latchkey.Session{}
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: sessions of user %s: %w", userID, err)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: sessions of user %s: %w", userID, err)
	}
	return out, nil
}

// RevokeSession implements latchkey.Store; the commit is durable.
func (s *Store) RevokeSession(ctx context.Context, id uuid.UUID, reason latchkey.RevokeReason, now time.Time) error {
	return s.durable(ctx, func(tx *Store) error {
		res, err := tx.tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = ?
			WHERE id = ? AND revoked_at IS NULL`, now.UnixMicro(), string(reason), id[:])
		if err != nil {
			return fmt.Errorf("sqlite: revoke session %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("sqlite: revoke session %s: %w", id, latchkey.ErrNotFound)
		}
		return nil
	})
}

// RevokeUserSessions implements latchkey.Store; the commit is durable.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, except uuid.UUID, reason latchkey.RevokeReason, now time.Time) (int, error) {
	var n int64
	err := s.durable(ctx, func(tx *Store) error {
		res, err := tx.tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = ?
			WHERE user_id = ? AND id != ? AND revoked_at IS NULL`, now.UnixMicro(), string(reason), userID[:], except[:])
		if err != nil {
			return fmt.Errorf("sqlite: revoke sessions of user %s: %w", userID, err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// RevokedSince implements latchkey.Store.
func (s *Store) RevokedSince(ctx context.Context, after latchkey.RevocationCursor, limit int) ([]*latchkey.Session, error) {
	at := int64(-1 << 63)
	if !after.At.IsZero() {
		at = after.At.UnixMicro()
	}
	rows, err := s.reader().QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE revoked_at IS NOT NULL AND (revoked_at > ? OR (revoked_at = ? AND id > ?))
		ORDER BY revoked_at, id LIMIT ?`, at, at, after.ID[:], limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: revoked sessions: %w", err)
	}
	defer rows.Close()
	out := []*latchkey.Session{}
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: revoked sessions: %w", err)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: revoked sessions: %w", err)
	}
	return out, nil
}

// RevokeSessionsByRotationKey implements latchkey.Store; the commit is
// durable.
func (s *Store) RevokeSessionsByRotationKey(ctx context.Context, keyID string, reason latchkey.RevokeReason, now time.Time) (int, error) {
	var n int64
	err := s.durable(ctx, func(tx *Store) error {
		res, err := tx.tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = ?
			WHERE rotation_key_id = ? AND revoked_at IS NULL`, now.UnixMicro(), string(reason), keyID)
		if err != nil {
			return fmt.Errorf("sqlite: revoke sessions of key %s: %w", keyID, err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// DeleteSessionsBefore implements latchkey.Store.
func (s *Store) DeleteSessionsBefore(ctx context.Context, t time.Time, limit int) (int, error) {
	res, err := s.writer().ExecContext(ctx, `DELETE FROM sessions WHERE id IN
		(SELECT id FROM sessions WHERE absolute_deadline < ? LIMIT ?)`, t.UnixMicro(), limit)
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete sessions: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
