package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/latchkey-dev/latchkey"
)

const userColumns = `id, email, password_hash, full_name, role, is_active, is_verified, token_version, created_at, updated_at`

func scanUser(row pgx.Row, extra ...any) (*latchkey.User, error) {
	var u latchkey.User
	dest := append([]any{&u.ID, &u.Email, &u.PasswordHash, &u.FullName, &u.Role, &u.IsActive, &u.IsVerified,
		&u.TokenVersion, &u.CreatedAt, &u.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, noRows(err)
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return &u, nil
}

// CreateUser implements latchkey.Store.
func (s *Store) CreateUser(ctx context.Context, u *latchkey.User) error {
	err := s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			u.ID, u.Email, u.PasswordHash, u.FullName, string(u.Role), u.IsActive, u.IsVerified,
			u.TokenVersion, u.CreatedAt, u.UpdatedAt)
		return err
	})
	if sqlState(err) == codeUniqueViolation {
		return fmt.Errorf("postgres: create user: %w", latchkey.ErrEmailTaken)
	}
	if err != nil {
		return fmt.Errorf("postgres: create user: %w", err)
	}
	return nil
}

// UserByID implements latchkey.Store.
func (s *Store) UserByID(ctx context.Context, id uuid.UUID) (*latchkey.User, error) {
	u, err := scanUser(s.q().QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("postgres: user %s: %w", id, err)
	}
	return u, nil
}

// userByEmailSQL compares lower(email), the expression the unique index
// users_email is built on, so the lookup is one index probe and matches
// whatever case the address was stored in.
const userByEmailSQL = `SELECT ` + userColumns + ` FROM users WHERE lower(email) = lower($1)`

// UserByEmail implements latchkey.Store; see userByEmailSQL.
func (s *Store) UserByEmail(ctx context.Context, email string) (*latchkey.User, error) {
	u, err := scanUser(s.q().QueryRow(ctx, userByEmailSQL, email))
	if err != nil {
		return nil, fmt.Errorf("postgres: user by email: %w", err)
	}
	return u, nil
}

// UpdateUser implements latchkey.Store as one UPDATE … RETURNING.
func (s *Store) UpdateUser(ctx context.Context, id uuid.UUID, p latchkey.UserPatch, now time.Time) (*latchkey.User, error) {
	args := []any{id, now}
	sets := []string{"updated_at = $2"}
	set := func(col string, v any) {
		args = append(args, v)
		sets = append(sets, col+" = $"+strconv.Itoa(len(args)))
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
		set("is_active", *p.IsActive)
	}
	if p.IsVerified != nil {
		set("is_verified", *p.IsVerified)
	}
	if p.PasswordHash != nil {
		set("password_hash", *p.PasswordHash)
	}
	if p.BumpTokenVersion {
		sets = append(sets, "token_version = token_version + 1")
	}
	where := "id = $1"
	if p.IfPasswordHash != nil {
		args = append(args, *p.IfPasswordHash)
		where += " AND password_hash = $" + strconv.Itoa(len(args))
	}
	var u *latchkey.User
	err := s.write(ctx, func(q querier) error {
		var err error
		u, err = scanUser(q.QueryRow(ctx,
			`UPDATE users SET `+strings.Join(sets, ", ")+` WHERE `+where+` RETURNING `+userColumns, args...))
		return err
	})
	if sqlState(err) == codeUniqueViolation {
		return nil, fmt.Errorf("postgres: update user %s: %w", id, latchkey.ErrEmailTaken)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: update user %s: %w", id, err)
	}
	return u, nil
}

// authStateSQL reads the user by primary key, left-joined to the session
// by primary key: two index probes in one statement.
var authStateSQL = `SELECT ` + prefixed("u.", userColumns) + `,
		coalesce(s.revoked_at IS NULL AND s.idle_deadline > $1 AND s.absolute_deadline > $1, false)
	FROM users u LEFT JOIN sessions s ON s.id = $2 AND s.user_id = u.id
	WHERE u.id = $3`

// AuthState implements latchkey.Store; see authStateSQL.
func (s *Store) AuthState(ctx context.Context, userID, sessionID uuid.UUID, now time.Time) (*latchkey.User, bool, error) {
	var live bool
	u, err := scanUser(s.q().QueryRow(ctx, authStateSQL, now, sessionID, userID), &live)
	if err != nil {
		return nil, false, fmt.Errorf("postgres: auth state of user %s: %w", userID, err)
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
		// strpos, not LIKE, so that % and _ in the search are literal.
		where, args = " WHERE strpos(lower(email), lower($1)) > 0", append(args, q.Email)
	}
	var total int
	if err := s.q().QueryRow(ctx, `SELECT count(*) FROM users`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("postgres: count users: %w", err)
	}
	n := len(args)
	rows, err := s.q().Query(ctx, `SELECT `+userColumns+` FROM users`+where+
		` ORDER BY created_at, id LIMIT $`+strconv.Itoa(n+1)+` OFFSET $`+strconv.Itoa(n+2),
		append(args, limit, max(q.Offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: list users: %w", err)
	}
	defer rows.Close()
	out := []*latchkey.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("postgres: list users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("postgres: list users: %w", err)
	}
	return out, total, nil
}

// DeleteUser implements latchkey.Store: the user goes, its sessions are
// revoked in the same transaction and stay for the revocation feed.
func (s *Store) DeleteUser(ctx context.Context, id uuid.UUID, now time.Time) error {
	err := s.InTx(ctx, func(tx latchkey.Store) error {
		q := tx.(*Store).q()
		tag, err := q.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return latchkey.ErrNotFound
		}
		_, err = q.Exec(ctx, `UPDATE sessions SET revoked_at = $2, revoke_reason = $3
			WHERE user_id = $1 AND revoked_at IS NULL`, id, now, string(latchkey.RevokeAdmin))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: delete user %s: %w", id, err)
	}
	return nil
}
