package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
)

// nullableID stores uuid.Nil as NULL: an event may name no user or session.
func nullableID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id
}

// AppendEvent implements latchkey.Store.
func (s *Store) AppendEvent(ctx context.Context, e *latchkey.Event) error {
	err := s.write(ctx, func(q querier) error {
		return q.QueryRow(ctx, `INSERT INTO security_events (at, user_id, session_id, kind, ip, user_agent, detail)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, e.At, nullableID(e.UserID), nullableID(e.SessionID),
			string(e.Kind), e.IP, e.UserAgent, e.Detail).Scan(&e.ID)
	})
	if err != nil {
		return fmt.Errorf("postgres: append %s event: %w", e.Kind, err)
	}
	return nil
}

// ListEvents implements latchkey.Store.
func (s *Store) ListEvents(ctx context.Context, f latchkey.EventFilter) ([]*latchkey.Event, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, cond+" = $"+strconv.Itoa(len(args)))
	}
	if f.UserID != uuid.Nil {
		add("user_id", f.UserID)
	}
	if f.SessionID != uuid.Nil {
		add("session_id", f.SessionID)
	}
	if f.Kind != "" {
		add("kind", string(f.Kind))
	}
	q := `SELECT id, at, user_id, session_id, kind, ip, user_agent, detail FROM security_events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	args = append(args, limit)
	rows, err := s.q().Query(ctx, q+" ORDER BY id DESC LIMIT $"+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list events: %w", err)
	}
	defer rows.Close()
	out := []*latchkey.Event{}
	for rows.Next() {
		var e latchkey.Event
		var uid, sid *uuid.UUID
		if err := rows.Scan(&e.ID, &e.At, &uid, &sid, &e.Kind, &e.IP, &e.UserAgent, &e.Detail); err != nil {
			return nil, fmt.Errorf("postgres: list events: %w", err)
		}
		e.At = e.At.UTC()
		if uid != nil {
			e.UserID = *uid
		}
		if sid != nil {
			e.SessionID = *sid
		}
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list events: %w", err)
	}
	return out, nil
}

// deleteEventsSQL is one batch of event cleanup, shaped like
// deleteSessionsSQL for the same reason.
const deleteEventsSQL = `DELETE FROM security_events WHERE id = ANY (ARRAY(
	SELECT id FROM security_events WHERE at < $1 ORDER BY at LIMIT $2))`

// DeleteEventsBefore implements latchkey.Store, oldest first, a batch at a
// time.
func (s *Store) DeleteEventsBefore(ctx context.Context, t time.Time, limit int) (int, error) {
	var n int64
	err := s.write(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, deleteEventsSQL, t, limit)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: delete events: %w", err)
	}
	return int(n), nil
}

// InsertKeyIfAbsent implements latchkey.Store. ON CONFLICT DO NOTHING on
// the (purpose, seq) unique constraint lets instances that start together
// race to create a key: one row is inserted and the others learn they lost.
func (s *Store) InsertKeyIfAbsent(ctx context.Context, k *latchkey.KeyRecord) (bool, error) {
	var n int64
	err := s.write(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `INSERT INTO keys
			(id, purpose, seq, algorithm, ciphertext, public_key, created_at, activate_at, retired_at, revoked_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (purpose, seq) DO NOTHING`,
			k.ID, string(k.Purpose), k.Seq, k.Algorithm, k.Ciphertext, k.PublicKey, k.CreatedAt,
			k.ActivateAt, nullTime(k.RetiredAt), nullTime(k.RevokedAt))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres: insert %s key: %w", k.Purpose, err)
	}
	return n == 1, nil
}

// Keys implements latchkey.Store.
func (s *Store) Keys(ctx context.Context) ([]*latchkey.KeyRecord, error) {
	rows, err := s.q().Query(ctx, `SELECT id, purpose, seq, algorithm, ciphertext, public_key,
		created_at, activate_at, retired_at, revoked_at FROM keys ORDER BY purpose, seq`)
	if err != nil {
		return nil, fmt.Errorf("postgres: keys: %w", err)
	}
	defer rows.Close()
	var out []*latchkey.KeyRecord
	for rows.Next() {
		var k latchkey.KeyRecord
		var retired, revoked *time.Time
		if err := rows.Scan(&k.ID, &k.Purpose, &k.Seq, &k.Algorithm, &k.Ciphertext, &k.PublicKey,
			&k.CreatedAt, &k.ActivateAt, &retired, &revoked); err != nil {
			return nil, fmt.Errorf("postgres: keys: %w", err)
		}
		k.CreatedAt, k.ActivateAt = k.CreatedAt.UTC(), k.ActivateAt.UTC()
		k.RetiredAt, k.RevokedAt = fromNull(retired), fromNull(revoked)
		out = append(out, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: keys: %w", err)
	}
	return out, nil
}

// RevokeKey implements latchkey.Store.
func (s *Store) RevokeKey(ctx context.Context, id string, now time.Time) error {
	var n int64
	err := s.write(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `UPDATE keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, now, id)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: revoke key %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: revoke key %s: %w", id, latchkey.ErrNotFound)
	}
	return nil
}
