package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
)

func nullableID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id[:]
}

// AppendEvent implements latchkey.Store.
func (s *Store) AppendEvent(ctx context.Context, e *latchkey.Event) error {
	err := s.writer().QueryRowContext(ctx, `INSERT INTO security_events (at, user_id, session_id, kind, ip, user_agent, detail)
		VALUES (?,?,?,?,?,?,?) RETURNING id`, e.At.UnixMicro(), nullableID(e.UserID), nullableID(e.SessionID),
		string(e.Kind), e.IP, e.UserAgent, e.Detail).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("sqlite: append %s event: %w", e.Kind, err)
	}
	return nil
}

// ListEvents implements latchkey.Store.
func (s *Store) ListEvents(ctx context.Context, f latchkey.EventFilter) ([]*latchkey.Event, error) {
	var where []string
	var args []any
	if f.UserID != uuid.Nil {
		where, args = append(where, "user_id = ?"), append(args, f.UserID[:])
	}
	if f.SessionID != uuid.Nil {
		where, args = append(where, "session_id = ?"), append(args, f.SessionID[:])
	}
	if f.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, string(f.Kind))
	}
	q := `SELECT id, at, user_id, session_id, kind, ip, user_agent, detail FROM security_events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.reader().QueryContext(ctx, q+" ORDER BY id DESC LIMIT ?", append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list events: %w", err)
	}
	defer rows.Close()
	out := []*latchkey.Event{}
	for rows.Next() {
		var e latchkey.Event
		var at int64
		var uid, sid []byte
		if err := rows.Scan(&e.ID, &at, &uid, &sid, &e.Kind, &e.IP, &e.UserAgent, &e.Detail); err != nil {
			return nil, fmt.Errorf("sqlite: list events: %w", err)
		}
		e.At = time.UnixMicro(at).UTC()
		copy(e.UserID[:], uid)
		copy(e.SessionID[:], sid)
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list events: %w", err)
	}
	return out, nil
}

// DeleteEventsBefore implements latchkey.Store.
func (s *Store) DeleteEventsBefore(ctx context.Context, t time.Time, limit int) (int, error) {
	res, err := s.writer().ExecContext(ctx, `DELETE FROM security_events WHERE id IN
		(SELECT id FROM security_events WHERE at < ? ORDER BY at LIMIT ?)`, t.UnixMicro(), limit)
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete events: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// InsertKeyIfAbsent implements latchkey.Store.
func (s *Store) InsertKeyIfAbsent(ctx context.Context, k *latchkey.KeyRecord) (bool, error) {
	res, err := s.writer().ExecContext(ctx, `INSERT INTO keys
		(id, purpose, seq, algorithm, ciphertext, public_key, created_at, activate_at, retired_at, revoked_at)
		VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (purpose, seq) DO NOTHING`,
		k.ID, string(k.Purpose), k.Seq, k.Algorithm, k.Ciphertext, k.PublicKey, micros(k.CreatedAt),
		micros(k.ActivateAt), micros(k.RetiredAt), micros(k.RevokedAt))
	if err != nil {
		return false, fmt.Errorf("sqlite: insert %s key: %w", k.Purpose, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Keys implements latchkey.Store.
func (s *Store) Keys(ctx context.Context) ([]*latchkey.KeyRecord, error) {
	rows, err := s.reader().QueryContext(ctx, `SELECT id, purpose, seq, algorithm, ciphertext, public_key,
		created_at, activate_at, retired_at, revoked_at FROM keys ORDER BY purpose, seq`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: keys: %w", err)
	}
	defer rows.Close()
	var out []*latchkey.KeyRecord
	for rows.Next() {
		var k latchkey.KeyRecord
		var created, activate, retired, revoked sql.NullInt64
		if err := rows.Scan(&k.ID, &k.Purpose, &k.Seq, &k.Algorithm, &k.Ciphertext, &k.PublicKey,
			&created, &activate, &retired, &revoked); err != nil {
			return nil, fmt.Errorf("sqlite: keys: %w", err)
		}
		k.CreatedAt, k.ActivateAt = fromMicros(created), fromMicros(activate)
		k.RetiredAt, k.RevokedAt = fromMicros(retired), fromMicros(revoked)
		out = append(out, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: keys: %w", err)
	}
	return out, nil
}

// RevokeKey implements latchkey.Store.
func (s *Store) RevokeKey(ctx context.Context, id string, now time.Time) error {
	return s.durable(ctx, func(tx *Store) error {
		res, err := tx.tx.ExecContext(ctx, `UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, now.UnixMicro(), id)
		if err != nil {
			return fmt.Errorf("sqlite: revoke key %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("sqlite: revoke key %s: %w", id, latchkey.ErrNotFound)
		}
		return nil
	})
}
