package latchkey

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey-dev/latchkey/internal/testhooks"
)

// The test kit's factories go through these hooks (see internal/testhooks),
// so that a factory token is made by the same code as an issued one.
func init() {
	testhooks.CreateUser = func(ctx context.Context, engine any, spec testhooks.UserSpec) (any, error) {
		return engine.(*Engine).createUserDirect(ctx, spec)
	}
	testhooks.OpenSession = func(ctx context.Context, engine any, spec testhooks.SessionSpec) (any, []string, error) {
		return engine.(*Engine).openSessionDirect(ctx, spec)
	}
}

// createUserDirect writes a user whose password skips the policy check.
func (e *Engine) createUserDirect(ctx context.Context, spec testhooks.UserSpec) (*User, error) {
	email, err := normalizeEmail(spec.Email)
	if err != nil {
		return nil, err
	}
	password, err := normalizePassword(spec.Password)
	if err != nil {
		return nil, err
	}
	var phc string
	if err := e.pool.do(ctx, func() { phc = hashPassword(password, e.cfg.PasswordParams) }); err != nil {
		return nil, err
	}
	role := RoleUser
	if spec.Admin {
		role = RoleAdmin
	}
	return e.createUser(ctx, email, spec.FullName, phc, role, !spec.Inactive, !spec.Unverified)
}

// openSessionDirect opens a session as Login does, then rotates it
// spec.Rotations times through the store's rotation write, dated before the
// grace window, and optionally revokes it.
func (e *Engine) openSessionDirect(ctx context.Context, spec testhooks.SessionSpec) (*Session, []string, error) {
	u, err := e.store.UserByID(ctx, spec.UserID)
	if err != nil {
		return nil, nil, fmt.Errorf("latchkey: test session: %w", err)
	}
	mode := ModeCookie
	if spec.Mobile {
		mode = ModeMobile
	}
	d := Device{ID: spec.DeviceID, Name: spec.DeviceName, UserAgent: spec.UserAgent, IP: spec.IP}
	now := e.now()
	idle := now.Add(e.cfg.RefreshIdleTTL)
	if spec.ExpiresIn != 0 {
		idle = now.Add(spec.ExpiresIn)
	}
	// Everything happens at a time t0 before the idle deadline and before the
	// grace window, so the rotations are valid writes and their spent tokens
	// count as reuse now.
	t0 := now.Add(-e.cfg.Grace - time.Second)
	if e.cfg.Grace < 0 {
		t0 = now.Add(-time.Second)
	}
	if !t0.Before(idle) {
		t0 = idle.Add(-time.Second)
	}
	ring := e.keys.current()
	rotID, rotKey := ring.currentRotation()
	var secret [secretLen]byte
	rand.Read(secret[:])
	s := e.newSession(u, mode, d, t0, rotID, rotKey, secret)
	s.IdleDeadline = minTime(idle, s.AbsoluteDeadline)
	if err := e.store.CreateSession(ctx, s, u.TokenVersion); err != nil {
		return nil, nil, fmt.Errorf("latchkey: test session: %w", err)
	}
	tok := &refreshToken{sessionID: s.ID, secret: secret}
	tokens := []string{string(encodeToken(tok, ring.tagKeys(now)[0]))}
	for range spec.Rotations {
		next := nextSecret(rotKey, s.ID, tok.generation+1, tok.secret)
		after := nextSecret(rotKey, s.ID, tok.generation+2, next)
		_, err := e.store.RotateSession(ctx, Rotation{
			ID: s.ID, Mode: mode, RotationKeyID: rotID, From: tok.generation, Hash: hashSecret(tok.secret),
			To: tok.generation + 1, CurrentHash: hashSecret(next), NextHash: hashSecret(after),
			Now: t0, IdleDeadline: s.IdleDeadline, UserAgent: d.UserAgent, DeviceID: d.ID,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("latchkey: test session rotation: %w", err)
		}
		tok = &refreshToken{sessionID: s.ID, generation: tok.generation + 1, secret: next}
		tokens = append(tokens, string(encodeToken(tok, ring.tagKeys(now)[0])))
	}
	if spec.Revoked {
		if err := e.store.RevokeSession(ctx, s.ID, RevokeLogout, now); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, nil, fmt.Errorf("latchkey: test session revoke: %w", err)
		}
	}
	if s, err = e.store.SessionByID(ctx, s.ID); err != nil {
		return nil, nil, fmt.Errorf("latchkey: test session: %w", err)
	}
	return s, tokens, nil
}
