package latchkey

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Logout verifies a refresh token exactly as Refresh does and ends its
// session. A token that does not verify returns ErrInvalidToken and changes
// nothing; logging out an already ended session returns nil.
func (e *Engine) Logout(ctx context.Context, token string, d Device) error {
	now := e.now()
	t, err := parseToken(token, e.keys.current().tagKeys(now))
	if err != nil {
		return err
	}
	s, key, err := e.loadForToken(ctx, t)
	if err != nil {
		return err
	}
	if v := e.verify(ctx, s, t, key, now, d); v.err != nil {
		return v.err
	}
	if s.Revoked() {
		return nil
	}
	return e.revokeSession(ctx, s, RevokeLogout, EventLogout, now, d)
}

func (e *Engine) revokeSession(ctx context.Context, s *Session, reason RevokeReason, kind EventKind, now time.Time, d Device) error {
	err := e.store.InTx(ctx, func(tx Store) error {
		if err := tx.RevokeSession(ctx, s.ID, reason, now); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, &Event{At: now, UserID: s.UserID, SessionID: s.ID, Kind: kind,
			IP: d.IP, UserAgent: d.UserAgent, Detail: string(reason)})
	})
	if errors.Is(err, ErrNotFound) {
		return nil // ended concurrently
	}
	if err != nil {
		return fmt.Errorf("latchkey: revoke session %s: %w", s.ID, err)
	}
	return nil
}

// LogoutAll ends every session of the user, bumps the token version so that
// access tokens already issued stop working at Authenticate, and returns how
// many sessions it ended.
func (e *Engine) LogoutAll(ctx context.Context, userID uuid.UUID, d Device) (int, error) {
	now := e.now()
	var n int
	err := e.store.InTx(ctx, func(tx Store) error {
		if _, err := tx.UpdateUser(ctx, userID, UserPatch{BumpTokenVersion: true}, now); err != nil {
			return err
		}
		var err error
		if n, err = tx.RevokeUserSessions(ctx, userID, uuid.Nil, RevokeLogoutAll, now); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, &Event{At: now, UserID: userID, Kind: EventLogoutAll, IP: d.IP, UserAgent: d.UserAgent,
			Detail: fmt.Sprintf("ended %d sessions", n)})
	})
	if err != nil {
		return 0, fmt.Errorf("latchkey: logout all for user %s: %w", userID, err)
	}
	return n, nil
}

// Sessions returns the user's live sessions, newest first.
func (e *Engine) Sessions(ctx context.Context, userID uuid.UUID) ([]*Session, error) {
	ss, err := e.store.ListSessions(ctx, userID, e.now())
	if err != nil {
		return nil, fmt.Errorf("latchkey: list sessions of user %s: %w", userID, err)
	}
	return ss, nil
}

// RevokeSession ends one of the user's sessions (a user signing a device
// out). It returns ErrNotFound if the session does not exist, is not the
// user's, or has already ended.
func (e *Engine) RevokeSession(ctx context.Context, userID, sessionID uuid.UUID, d Device) error {
	s, err := e.store.SessionByID(ctx, sessionID)
	if errors.Is(err, ErrNotFound) || (err == nil && (s.UserID != userID || s.Revoked())) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("latchkey: read session %s: %w", sessionID, err)
	}
	return e.revokeSession(ctx, s, RevokeLogout, EventSessionRevoked, e.now(), d)
}

// RevokeOtherSessions ends every session of the user except keep and
// returns how many it ended.
func (e *Engine) RevokeOtherSessions(ctx context.Context, userID, keep uuid.UUID, d Device) (int, error) {
	now := e.now()
	var n int
	err := e.store.InTx(ctx, func(tx Store) error {
		var err error
		if n, err = tx.RevokeUserSessions(ctx, userID, keep, RevokeLogout, now); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, &Event{At: now, UserID: userID, SessionID: keep, Kind: EventSessionRevoked,
			IP: d.IP, UserAgent: d.UserAgent, Detail: fmt.Sprintf("ended %d other sessions", n)})
	})
	if err != nil {
		return 0, fmt.Errorf("latchkey: revoke other sessions of user %s: %w", userID, err)
	}
	return n, nil
}

// SetActive activates or deactivates a user. Deactivation ends all of the
// user's sessions at once and bumps the token version. It returns
// ErrNotFound for an unknown user.
func (e *Engine) SetActive(ctx context.Context, userID uuid.UUID, active bool) (*User, error) {
	now := e.now()
	var u *User
	err := e.store.InTx(ctx, func(tx Store) error {
		var err error
		u, err = tx.UpdateUser(ctx, userID, UserPatch{IsActive: &active, BumpTokenVersion: !active}, now)
		if err != nil {
			return err
		}
		kind, detail := EventUserActivated, ""
		if !active {
			n, err := tx.RevokeUserSessions(ctx, userID, uuid.Nil, RevokeUserDeactivated, now)
			if err != nil {
				return err
			}
			kind, detail = EventUserDeactivated, fmt.Sprintf("ended %d sessions", n)
		}
		return tx.AppendEvent(ctx, &Event{At: now, UserID: userID, Kind: kind, Detail: detail})
	})
	if err != nil {
		return nil, fmt.Errorf("latchkey: set active for user %s: %w", userID, err)
	}
	return u, nil
}

// SetRole changes a user's role and bumps the token version, so a demoted
// admin loses admin access at once. It returns ErrNotFound for an unknown
// user and a *ValidationError for an unknown role.
func (e *Engine) SetRole(ctx context.Context, userID uuid.UUID, role Role) (*User, error) {
	if !role.Valid() {
		return nil, invalid("role", `must be "user" or "admin"`)
	}
	now := e.now()
	var u *User
	err := e.store.InTx(ctx, func(tx Store) error {
		var err error
		if u, err = tx.UpdateUser(ctx, userID, UserPatch{Role: &role, BumpTokenVersion: true}, now); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, &Event{At: now, UserID: userID, Kind: EventRoleChanged, Detail: "role " + string(role)})
	})
	if err != nil {
		return nil, fmt.Errorf("latchkey: set role for user %s: %w", userID, err)
	}
	return u, nil
}
