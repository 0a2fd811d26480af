package latchkey

import (
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Role is a user's authorization role. The server authorizes on the role
// stored in the database, not the one in an access token.
type Role string

// Roles a user can hold.
const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleUser || r == RoleAdmin }

// User is an account. Email is stored lower-cased and is unique.
type User struct {
	ID       uuid.UUID
	Email    string
	FullName string
	Role     Role
	// PasswordHash is an argon2id PHC string. It is never logged or
	// serialized.
	PasswordHash string `json:"-"`
	IsActive     bool
	IsVerified   bool
	// TokenVersion is increased by logout-all, a password change, a role
	// change and deactivation; access tokens carrying an older version are
	// refused by Authenticate.
	TokenVersion int64
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// LogValue keeps the password hash out of logs.
func (u *User) LogValue() slog.Value {
	if u == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(slog.String("id", u.ID.String()), slog.String("role", string(u.Role)))
}

// UserPatch changes some fields of a user in one write. Nil fields are left
// as they are.
type UserPatch struct {
	Email        *string
	FullName     *string
	Role         *Role
	IsActive     *bool
	IsVerified   *bool
	PasswordHash *string
	// BumpTokenVersion increases TokenVersion by one, so that access tokens
	// issued before the change stop working.
	BumpTokenVersion bool
	// IfPasswordHash, if set, makes the write conditional: it applies only
	// while the stored password hash is still this one. A change that
	// checked the current password must not land after another change of
	// the password in the meantime.
	IfPasswordHash *string
}

const (
	maxEmailLen    = 254 // RFC 5321 path limit
	maxFullNameLen = 200
)

// NormalizeEmail validates an email address and returns the canonical form
// the engine stores and compares (trimmed, lower-cased). Compare emails by
// this form, byte for byte: strings.EqualFold folds more than the engine
// does (U+017F "ſ" matches "s"), so it would call two stored accounts equal.
func NormalizeEmail(email string) (string, error) { return normalizeEmail(email) }

func normalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if e == "" {
		return "", invalid("email", "is required")
	}
	if len(e) > maxEmailLen {
		return "", invalid("email", "is longer than 254 characters")
	}
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" || !strings.Contains(e[strings.LastIndexByte(e, '@')+1:], ".") {
		return "", invalid("email", "is not a valid email address")
	}
	return e, nil
}

func validateFullName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if len([]rune(name)) > maxFullNameLen {
		return "", invalid("full_name", "is longer than 200 characters")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", invalid("full_name", "contains control characters")
		}
	}
	return name, nil
}
