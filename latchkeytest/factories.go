package latchkeytest

import (
	"fmt"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/testhooks"
)

// DefaultPassword is the password NewUser gives a user unless told
// otherwise (the original factory's).
const DefaultPassword = "TestPass123"

// UserOption configures NewUser.
type UserOption func(*userSpec)

// userSpec keeps the internal hook's type out of the package's API.
type userSpec struct{ testhooks.UserSpec }

// Email sets the user's email (default user1@test.example, user2@…, unique
// per engine).
func Email(email string) UserOption { return func(s *userSpec) { s.Email = email } }

// Password sets the user's password (default DefaultPassword). It is not
// checked against the password policy.
func Password(password string) UserOption {
	return func(s *userSpec) { s.Password = password }
}

// FullName sets the user's full name.
func FullName(name string) UserOption { return func(s *userSpec) { s.FullName = name } }

// Admin gives the user the admin role.
func Admin() UserOption { return func(s *userSpec) { s.Admin = true } }

// Inactive creates the user deactivated.
func Inactive() UserOption { return func(s *userSpec) { s.Inactive = true } }

// Unverified creates the user with an unverified email (the default is
// verified).
func Unverified() UserOption { return func(s *userSpec) { s.Unverified = true } }

// NewUser writes a user directly, as the original factory did: the password
// is hashed like any other but not checked against the policy, so weak test
// passwords such as DefaultPassword work.
func NewUser(tb testing.TB, e *Engine, opts ...UserOption) *latchkey.User {
	tb.Helper()
	n := e.users.Add(1)
	spec := userSpec{testhooks.UserSpec{Email: fmt.Sprintf("user%d@test.example", n), Password: DefaultPassword,
		FullName: fmt.Sprintf("Test User %d", n)}}
	for _, o := range opts {
		o(&spec)
	}
	u, err := testhooks.CreateUser(tb.Context(), e.Engine, spec.UserSpec)
	if err != nil {
		tb.Fatalf("latchkeytest: NewUser(%s): %v", spec.Email, err)
	}
	return u.(*latchkey.User)
}

// TokenOption configures NewRefreshToken.
type TokenOption func(*tokenSpec)

type tokenSpec struct{ testhooks.SessionSpec }

// Revoked returns a token whose session has been revoked (reason logout).
func Revoked() TokenOption { return func(s *tokenSpec) { s.Revoked = true } }

// ExpiresIn sets the token's idle deadline to d from now; a negative d gives
// an expired token. The default is the engine's idle lifetime.
func ExpiresIn(d time.Duration) TokenOption {
	return func(s *tokenSpec) {
		if d == 0 {
			d = -time.Microsecond // "expires now" is expired, not the default
		}
		s.ExpiresIn = d
	}
}

// Rotated returns a token whose session has already rotated n times, the
// rotations dated before the grace window; SpentTokens returns the n spent
// tokens, each of which now counts as reuse.
func Rotated(n int) TokenOption { return func(s *tokenSpec) { s.Rotations = n } }

// Mobile opens the session in mobile mode (the default is cookie mode).
func Mobile() TokenOption { return func(s *tokenSpec) { s.Mobile = true } }

// WithDevice sets the client that signed in (and rotated the session, for
// Rotated): its user agent and device id decide grace answers.
func WithDevice(d latchkey.Device) TokenOption {
	return func(s *tokenSpec) {
		s.DeviceID, s.DeviceName, s.UserAgent, s.IP = d.ID, d.Name, d.UserAgent, d.IP
	}
}

// NewRefreshToken opens a session for user through the engine's own code and
// returns it with its current raw refresh token, the counterpart of the
// original RefreshTokenFactory.create(...) -> (row, raw_token).
func NewRefreshToken(tb testing.TB, e *Engine, user *latchkey.User, opts ...TokenOption) (*latchkey.Session, string) {
	tb.Helper()
	spec := tokenSpec{testhooks.SessionSpec{UserID: user.ID}}
	for _, o := range opts {
		o(&spec)
	}
	if spec.Rotations < 0 {
		tb.Fatalf("latchkeytest: Rotated(%d): must not be negative", spec.Rotations)
	}
	s, tokens, err := testhooks.OpenSession(tb.Context(), e.Engine, spec.SessionSpec)
	if err != nil {
		tb.Fatalf("latchkeytest: NewRefreshToken: %v", err)
	}
	sess := s.(*latchkey.Session)
	e.spent.Store(sess.ID, tokens[:len(tokens)-1])
	return sess, tokens[len(tokens)-1]
}

// SpentTokens returns the tokens of a session made by NewRefreshToken with
// Rotated(n), oldest first: generation 0 to n-1. Presenting any of them
// (outside the grace window, which they are) counts as reuse and ends the
// session.
func SpentTokens(tb testing.TB, e *Engine, s *latchkey.Session) []string {
	tb.Helper()
	v, ok := e.spent.Load(s.ID)
	if !ok {
		tb.Fatalf("latchkeytest: SpentTokens: session %s was not made by NewRefreshToken on this engine", s.ID)
	}
	return append([]string(nil), v.([]string)...)
}
