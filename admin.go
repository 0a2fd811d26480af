package latchkey

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// User returns the user with id, or ErrNotFound.
func (e *Engine) User(ctx context.Context, id uuid.UUID) (*User, error) {
	u, err := e.store.UserByID(ctx, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("latchkey: user %s: %w", id, err)
	}
	return u, nil
}

// ListUsers returns a page of users (oldest first) and the number matching
// q in all.
func (e *Engine) ListUsers(ctx context.Context, q UserQuery) ([]*User, int, error) {
	if q.Offset < 0 {
		return nil, 0, invalid("offset", "must not be negative")
	}
	if q.Limit < 0 || q.Limit > 1000 {
		return nil, 0, invalid("limit", "must be between 1 and 1000")
	}
	// Stored emails are lower-cased by the engine; searching in the same
	// form keeps the stores from folding case their own ways (SQLite folds
	// only ASCII).
	q.Email = strings.ToLower(q.Email)
	us, n, err := e.store.ListUsers(ctx, q)
	if err != nil {
		return nil, 0, fmt.Errorf("latchkey: list users: %w", err)
	}
	return us, n, nil
}

// DeleteUser deletes a user and revokes its sessions (kept until cleanup, so
// that the revocation feed reports them); its security events stay. It
// returns ErrNotFound for an unknown user.
func (e *Engine) DeleteUser(ctx context.Context, id uuid.UUID) error {
	if err := e.store.DeleteUser(ctx, id, e.now()); err != nil {
		if errors.Is(err, ErrNotFound) {
			return ErrNotFound
		}
		return fmt.Errorf("latchkey: delete user %s: %w", id, err)
	}
	e.event(ctx, &Event{UserID: id, Kind: EventUserDeleted})
	return nil
}

// AccountUpdate is a change a user makes to its own account. Nil fields are
// left as they are; changing the email needs CurrentPassword (ASVS V6:
// changing an authentication identifier needs re-authentication), and the
// new address starts unverified.
type AccountUpdate struct {
	FullName        *string
	Email           *string
	CurrentPassword string
}

// UpdateAccount checks every field of up before it writes any, then applies
// them in one write: a request with one bad field changes nothing. It returns
// a *ValidationError, ErrInvalidCredentials (wrong current password),
// ErrEmailTaken or ErrNotFound.
func (e *Engine) UpdateAccount(ctx context.Context, userID uuid.UUID, up AccountUpdate) (*User, error) {
	var p UserPatch
	if up.FullName != nil {
		name, err := validateFullName(*up.FullName)
		if err != nil {
			return nil, err
		}
		p.FullName = &name
	}
	u, err := e.store.UserByID(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("latchkey: update account: %w", err)
	}
	if up.Email != nil {
		canon, err := normalizeEmail(*up.Email)
		if err != nil {
			return nil, err
		}
		if up.CurrentPassword == "" {
			return nil, invalid("current_password", "is required to change the email")
		}
		password, perr := normalizePassword(up.CurrentPassword)
		var ok bool
		if err := e.pool.do(ctx, func() { ok, _ = checkPassword(password, u.PasswordHash, e.cfg.PasswordParams) }); err != nil {
			return nil, err
		}
		if !ok || perr != nil {
			return nil, ErrInvalidCredentials
		}
		if canon != u.Email {
			unverified := false
			p.Email, p.IsVerified = &canon, &unverified
			// Only while the password just checked is still the account's.
			p.IfPasswordHash = &u.PasswordHash
		}
	}
	if p == (UserPatch{}) {
		return u, nil
	}
	u, err = e.store.UpdateUser(ctx, userID, p, e.now())
	if errors.Is(err, ErrEmailTaken) {
		return nil, ErrEmailTaken
	}
	if errors.Is(err, ErrNotFound) && p.IfPasswordHash != nil {
		return nil, ErrInvalidCredentials // the password changed meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("latchkey: update account: %w", err)
	}
	if p.Email != nil {
		e.event(ctx, &Event{UserID: userID, Kind: EventEmailChanged})
	}
	return u, nil
}

// RevocationFeedDelay is how old a revocation must be before the feed serves
// it. A revocation's time is taken before its transaction commits (which may
// wait on a lock) and by an instance whose clock may be up to MaxClockSkew
// off, so a fresher entry could still be joined by one that sorts before it;
// serving only settled entries means a cursor never skips one.
const RevocationFeedDelay = MaxClockSkew + 13*time.Second

// Revocations returns up to limit sessions revoked after cursor and at least
// RevocationFeedDelay ago, oldest first, for the revocation feed that
// verifiers poll.
func (e *Engine) Revocations(ctx context.Context, after RevocationCursor, limit int) ([]*Session, error) {
	if limit <= 0 || limit > 1001 {
		return nil, invalid("limit", "must be between 1 and 1000")
	}
	ss, err := e.store.RevokedSince(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("latchkey: revocations: %w", err)
	}
	settled := e.now().Add(-RevocationFeedDelay)
	for i, s := range ss {
		if s.RevokedAt.After(settled) {
			return ss[:i], nil
		}
	}
	return ss, nil
}

// ClockSkew returns how far the engine's clock is from the store's. An
// instance more than MaxClockSkew away should report not ready: grace
// windows and deadlines are decided by whichever instance serves a request.
func (e *Engine) ClockSkew(ctx context.Context) (time.Duration, error) {
	before := e.cfg.Now()
	db, err := e.store.Now(ctx)
	if err != nil {
		return 0, fmt.Errorf("latchkey: clock check: %w", err)
	}
	after := e.cfg.Now()
	// Compare with the middle of the round trip.
	mid := before.Add(after.Sub(before) / 2)
	return mid.Sub(db), nil
}

// MaxClockSkew is the largest difference between an instance's clock and
// the database's that DESIGN.md tolerates.
const MaxClockSkew = 2 * time.Second

// IntrospectRefreshToken reports, without rotating it, whether a refresh
// token is active (RFC 7662): it verifies, its session is live, and it is
// the session's current token (a spent one is not active, even inside the
// grace window). It returns the session, or ErrInvalidToken, ErrExpiredToken
// or ErrRevokedToken.
func (e *Engine) IntrospectRefreshToken(ctx context.Context, token string) (*Session, error) {
	now := e.now()
	t, err := parseToken(token, e.keys.current().tagKeys(now))
	if err != nil {
		return nil, err
	}
	s, key, err := e.loadForToken(ctx, t)
	if err != nil {
		return nil, err
	}
	if v := e.verify(ctx, s, t, key, now, Device{}); v.err != nil {
		return nil, v.err
	}
	switch {
	case s.Revoked():
		return nil, ErrRevokedToken
	case !now.Before(s.IdleDeadline) || !now.Before(s.AbsoluteDeadline):
		return nil, ErrExpiredToken
	case t.generation != s.Generation && t.generation != s.Generation+1:
		return nil, ErrRevokedToken // spent: no longer usable as such
	}
	return s, nil
}

// RevokeToken implements RFC 7009 for both kinds of token: a refresh token
// or an access token that verifies ends its session; anything else changes
// nothing and returns ErrInvalidToken (the endpoint answers 200 either way).
func (e *Engine) RevokeToken(ctx context.Context, token string, d Device) error {
	if err := e.Logout(ctx, token, d); !errors.Is(err, ErrInvalidToken) {
		return err
	}
	c, err := e.VerifyAccessToken(token)
	if err != nil {
		return ErrInvalidToken
	}
	s, err := e.store.SessionByID(ctx, c.SessionID)
	if errors.Is(err, ErrNotFound) || (err == nil && (s.UserID != c.UserID || s.Revoked())) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("latchkey: revoke token: %w", err)
	}
	return e.revokeSession(ctx, s, RevokeLogout, EventLogout, e.now(), d)
}
