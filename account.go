package latchkey

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// NewUser describes an account to register.
type NewUser struct {
	Email    string
	Password string
	FullName string
	// Role defaults to RoleUser.
	Role Role
	// IsVerified marks the email as verified from the start (for accounts
	// created by an administrator).
	IsVerified bool
}

// Register creates an account after checking the email, the name and the
// password policy (8 to 128 characters after NFKC, not easily guessed). It
// returns a *ValidationError for bad input (matching ErrWeakPassword for a
// guessable password), ErrEmailTaken, or ErrOverloaded.
func (e *Engine) Register(ctx context.Context, nu NewUser) (*User, error) {
	email, err := normalizeEmail(nu.Email)
	if err != nil {
		return nil, err
	}
	name, err := validateFullName(nu.FullName)
	if err != nil {
		return nil, err
	}
	if nu.Role == "" {
		nu.Role = RoleUser
	}
	if !nu.Role.Valid() {
		return nil, invalid("role", `must be "user" or "admin"`)
	}
	password, err := checkPasswordPolicy(nu.Password, email, name)
	if err != nil {
		return nil, err
	}
	var phc string
	if err := e.pool.do(ctx, func() { phc = hashPassword(password, e.cfg.PasswordParams) }); err != nil {
		return nil, err
	}
	return e.createUser(ctx, email, name, phc, nu.Role, true, nu.IsVerified)
}

func (e *Engine) createUser(ctx context.Context, email, name, phc string, role Role, active, verified bool) (*User, error) {
	now := e.now()
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("latchkey: user id: %w", err)
	}
	u := &User{ID: id, Email: email, FullName: name, Role: role, PasswordHash: phc,
		IsActive: active, IsVerified: verified, CreatedAt: now, UpdatedAt: now}
	if err := e.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, ErrEmailTaken) {
			return nil, ErrEmailTaken
		}
		return nil, fmt.Errorf("latchkey: register: %w", err)
	}
	e.event(ctx, &Event{At: now, UserID: u.ID, Kind: EventRegistered})
	return u, nil
}

// Login checks email and password and opens a session in mode for device d.
// The password is checked before the account's state, and an unknown email
// costs the same hash as a known one; a wrong password, an unknown email and
// an inactive account all return ErrInvalidCredentials. It may also return a
// *ValidationError for a bad mode or ErrOverloaded.
func (e *Engine) Login(ctx context.Context, email, password string, mode Mode, d Device) (*Grant, error) {
	if !mode.Valid() {
		return nil, invalid("mode", `must be "cookie" or "mobile"`)
	}
	password, perr := normalizePassword(password)
	canon, eerr := normalizeEmail(email)
	var u *User
	if eerr == nil {
		var err error
		u, err = e.store.UserByEmail(ctx, canon)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("latchkey: login: %w", err)
		}
	}
	var ok, stale bool
	if err := e.pool.do(ctx, func() {
		phc := e.dummy()
		if u != nil {
			phc = u.PasswordHash
		}
		ok, stale = checkPassword(password, phc, e.cfg.PasswordParams)
	}); err != nil {
		return nil, err
	}
	now := e.now()
	if u == nil || !ok || perr != nil || !u.IsActive {
		ev := &Event{At: now, Kind: EventSignInFailed, IP: d.IP, UserAgent: d.UserAgent}
		if u != nil {
			ev.UserID = u.ID
			if ok && perr == nil {
				ev.Detail = "account inactive"
			}
		}
		e.event(ctx, ev)
		return nil, ErrInvalidCredentials
	}
	g, err := e.openSession(ctx, u, mode, d, now)
	if err != nil {
		return nil, err
	}
	if stale {
		// After the session is open: a sign-in that lost to a password
		// change must not write the old password's hash back.
		e.rehash(ctx, u, password)
	}
	return g, nil
}

// rehash upgrades a password hash made with older parameters. Failure only
// delays the upgrade to the next sign-in.
func (e *Engine) rehash(ctx context.Context, u *User, password string) {
	var phc string
	if err := e.pool.do(ctx, func() { phc = hashPassword(password, e.cfg.PasswordParams) }); err != nil {
		return
	}
	if _, err := e.store.UpdateUser(ctx, u.ID, UserPatch{PasswordHash: &phc, IfPasswordHash: &u.PasswordHash}, e.now()); err != nil {
		e.log.WarnContext(ctx, "re-hash password", "user_id", u.ID, "err", err)
		return
	}
	u.PasswordHash = phc
}

// openSession creates a session row at generation 0 and the grant for it.
func (e *Engine) openSession(ctx context.Context, u *User, mode Mode, d Device, now time.Time) (*Grant, error) {
	ring := e.keys.current()
	rotID, rotKey := ring.currentRotation()
	var secret [secretLen]byte
	rand.Read(secret[:])
	s := e.newSession(u, mode, d, now, rotID, rotKey, secret)
	sid := s.ID
	if err := e.store.CreateSession(ctx, s, u.TokenVersion); err != nil {
		if errors.Is(err, ErrNotFound) {
			// The account changed (password, logout-all, deactivation)
			// while the password was being checked: this sign-in lost.
			return nil, ErrInvalidCredentials
		}
		return nil, fmt.Errorf("latchkey: open session: %w", err)
	}
	e.event(ctx, &Event{At: now, UserID: u.ID, SessionID: sid, Kind: EventSignIn, IP: d.IP, UserAgent: d.UserAgent})
	access, exp, err := e.issueAccess(u.ID, sid, u.Role, u.TokenVersion, now, s.IdleDeadline)
	if err != nil {
		return nil, err
	}
	return &Grant{
		AccessToken: access, AccessExpiresAt: exp,
		RefreshToken:     encodeToken(&refreshToken{sessionID: sid, generation: 0, secret: secret}, ring.tagKeys(now)[0]),
		RefreshExpiresAt: s.IdleDeadline,
		UserID:           u.ID, SessionID: sid, Role: u.Role, User: u, Session: s,
	}, nil
}

// newSession builds the row of a session opened at now with first secret
// secret, at generation 0.
func (e *Engine) newSession(u *User, mode Mode, d Device, now time.Time, rotID string, rotKey []byte, secret [secretLen]byte) *Session {
	// A random (v4) id: a v7 id would reveal the sign-in time to anyone
	// holding the token.
	sid := uuid.New()
	return &Session{
		ID: sid, UserID: u.ID, Mode: mode, Generation: 0,
		CurrentHash: hashSecret(secret), NextHash: hashSecret(nextSecret(rotKey, sid, 1, secret)),
		CreatedAt: now, LastUsedAt: now,
		IdleDeadline:     minTime(now.Add(e.cfg.RefreshIdleTTL), now.Add(e.cfg.SessionMaxAge)),
		AbsoluteDeadline: now.Add(e.cfg.SessionMaxAge),
		RotationKeyID:    rotID, DeviceID: d.ID, DeviceName: d.Name, UserAgent: d.UserAgent, IPAddress: d.IP,
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ChangePassword sets a new password after checking the current one, bumps
// the user's token version and ends every other session of the user
// (keepSession, the caller's own, stays; uuid.Nil ends them all). It returns
// ErrInvalidCredentials for a wrong current password, a *ValidationError for
// a new one outside the policy, ErrNotFound, or ErrOverloaded.
func (e *Engine) ChangePassword(ctx context.Context, userID, keepSession uuid.UUID, current, next string, d Device) error {
	u, err := e.store.UserByID(ctx, userID)
	if err != nil {
		return fmt.Errorf("latchkey: change password: %w", err)
	}
	current, perr := normalizePassword(current)
	var ok bool
	if err := e.pool.do(ctx, func() { ok, _ = checkPassword(current, u.PasswordHash, e.cfg.PasswordParams) }); err != nil {
		return err
	}
	if !ok || perr != nil {
		return ErrInvalidCredentials
	}
	next, err = checkPasswordPolicy(next, u.Email, u.FullName)
	if err != nil {
		return err
	}
	var phc string
	if err := e.pool.do(ctx, func() { phc = hashPassword(next, e.cfg.PasswordParams) }); err != nil {
		return err
	}
	now := e.now()
	return e.store.InTx(ctx, func(tx Store) error {
		// Conditional on the hash the current password was checked against,
		// so that of two changes racing with the same old password only the
		// first lands.
		if _, err := tx.UpdateUser(ctx, userID, UserPatch{PasswordHash: &phc, BumpTokenVersion: true,
			IfPasswordHash: &u.PasswordHash}, now); err != nil {
			if errors.Is(err, ErrNotFound) {
				return ErrInvalidCredentials
			}
			return fmt.Errorf("latchkey: change password: %w", err)
		}
		n, err := tx.RevokeUserSessions(ctx, userID, keepSession, RevokePasswordChanged, now)
		if err != nil {
			return fmt.Errorf("latchkey: change password: %w", err)
		}
		return tx.AppendEvent(ctx, &Event{At: now, UserID: userID, SessionID: keepSession, Kind: EventPasswordChanged,
			IP: d.IP, UserAgent: d.UserAgent, Detail: fmt.Sprintf("ended %d other sessions", n)})
	})
}

// UpdateProfile changes the user's full name.
func (e *Engine) UpdateProfile(ctx context.Context, userID uuid.UUID, fullName string) (*User, error) {
	name, err := validateFullName(fullName)
	if err != nil {
		return nil, err
	}
	u, err := e.store.UpdateUser(ctx, userID, UserPatch{FullName: &name}, e.now())
	if err != nil {
		return nil, fmt.Errorf("latchkey: update profile: %w", err)
	}
	return u, nil
}
