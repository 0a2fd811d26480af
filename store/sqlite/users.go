package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
)

const userColumns = `id, email, password_hash, full_name, role, is_active, is_verified, token_version, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanUser(row scanner, extra ...any) (*latchkey.User, error) {
	var u latchkey.User
	var id []byte
	var created, updated sql.NullInt64
	dest := append([]any{&id, &u.Email, &u.PasswordHash, &u.FullName, &u.Role, &u.IsActive, &u.IsVerified,
		&u.TokenVersion, &created, &updated}, extra...)
	if err := row.Scan(dest...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, latchkey.ErrNotFound
		}
		return nil, err
	}
	copy(u.ID[:], id)
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &u, nil
}

// CreateUser implements latchkey.Store.
func (s *Store) CreateUser(ctx context.Context, u *latchkey.User) error {
	_, err := s.writer().ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?)`,
		u.ID[:], u.Email, u.PasswordHash, u.FullName, string(u.Role), boolInt(u.IsActive), boolInt(u.IsVerified),
		u.TokenVersion, micros(u.CreatedAt), micros(u.UpdatedAt))
	if isUnique(err) {
		return fmt.Errorf("sqlite: create user: %w", latchkey.ErrEmailTaken)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create user: %w", err)
	}
	return nil
}

// UserByID implements latchkey.Store.
func (s *Store) UserByID(ctx context.Context, id uuid.UUID) (*latchkey.User, error) {
	u, err := scanUser(s.reader().QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id[:]))
	if err != nil {
		return nil, fmt.Errorf("sqlite: user %s: %w", id, err)
	}
	return u, nil
}

// UserByEmail implements latchkey.Store.
func (s *Store) UserByEmail(ctx context.Context, email string) (*latchkey.User, error) {
	u, err := scanUser(s.reader().QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = ?`, email))
	if err != nil {
		return nil, fmt.Errorf("sqlite: user by email: %w", err)
	}
	return u, nil
}

// UpdateUser implements latchkey.Store.
func (s *Store) UpdateUser(ctx context.Context, id uuid.UUID, p latchkey.UserPatch, now time.Time) (*latchkey.User, error) {
	sets := []string{"updated_at = ?"}
	args := []any{now.UnixMicro()}
	set := func(col string, v any) {
		sets = append(sets, col+" = ?")
		args = append(args, v)
	}
	if p.Email != nil {
		set("email", *p.Email)
	}
	if p.FullName != nil {
		set("full_name", *p.FullName)
	}
	if p.Role != nil {
		set("role", string(*p.Role))
	}
	if p.IsActive != nil {
		set("is_active", boolInt(*p.IsActive))
	}
	if p.IsVerified != nil {
		set("is_verified", boolInt(*p.IsVerified))
	}
	if p.PasswordHash != nil {
		set("password_hash", *p.PasswordHash)
	}
	if p.BumpTokenVersion {
		sets = append(sets, "token_version = token_version + 1")
	}
	where := "id = ?"
	args = append(args, id[:])
	if p.IfPasswordHash != nil {
		where += " AND password_hash = ?"
		args = append(args, *p.IfPasswordHash)
	}
	u, err := scanUser(s.writer().QueryRowContext(ctx,
		`UPDATE users SET `+strings.Join(sets, ", ")+` WHERE `+where+` RETURNING `+userColumns, args...))
	if isUnique(err) {
		return nil, fmt.Errorf("sqlite: update user %s: %w", id, latchkey.ErrEmailTaken)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: update user %s: %w", id, err)
	}
	return u, nil
}

// AuthState implements latchkey.Store: one read of the user by primary key
// joined to the session by primary key.
func (s *Store) AuthState(ctx context.Context, userID, sessionID uuid.UUID, now time.Time) (*latchkey.User, bool, error) {
	var live bool
	n := now.UnixMicro()
	u, err := scanUser(s.reader().QueryRowContext(ctx, `SELECT `+prefixed("u.", userColumns)+`,
		coalesce(s.revoked_at IS NULL AND s.idle_deadline > ? AND s.absolute_deadline > ?, 0)
		FROM users u LEFT JOIN sessions s ON s.id = ? AND s.user_id = u.id
		WHERE u.id = ?`, n, n, sessionID[:], userID[:]), &live)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: auth state of user %s: %w", userID, err)
	}
	return u, live, nil
}

func prefixed(prefix, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = prefix + c
	}
	return strings.Join(cols, ", ")
}

// ListUsers implements latchkey.Store.
func (s *Store) ListUsers(ctx context.Context, q latchkey.UserQuery) ([]*latchkey.User, int, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	where, args := "", []any{}
	if q.Email != "" {
		// instr, not LIKE, so that % and _ in the search are literal.
		where, args = " WHERE instr(lower(email), lower(?)) > 0", append(args, q.Email)
	}
	var total int
	if err := s.reader().QueryRowContext(ctx, `SELECT count(*) FROM users`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("sqlite: count users: %w", err)
	}
	rows, err := s.reader().QueryContext(ctx, `SELECT `+userColumns+` FROM users`+where+
		` ORDER BY created_at, id LIMIT ? OFFSET ?`, append(args, limit, max(q.Offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: list users: %w", err)
	}
	defer rows.Close()
	out := []*latchkey.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("sqlite: list users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("sqlite: list users: %w", err)
	}
	return out, total, nil
}

// DeleteUser implements latchkey.Store; the commit is durable, since it ends
// the user's sessions.
func (s *Store) DeleteUser(ctx context.Context, id uuid.UUID, now time.Time) error {
	return s.durable(ctx, func(tx *Store) error {
		res, err := tx.tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id[:])
		if err != nil {
			return fmt.Errorf("sqlite: delete user %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("sqlite: delete user %s: %w", id, latchkey.ErrNotFound)
		}
		if _, err := tx.tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = ?
			WHERE user_id = ? AND revoked_at IS NULL`, now.UnixMicro(), string(latchkey.RevokeAdmin), id[:]); err != nil {
			return fmt.Errorf("sqlite: delete user %s: revoke sessions: %w", id, err)
		}
		return nil
	})
}
