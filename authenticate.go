package latchkey

import (
	"context"
	"errors"
	"fmt"
)

// VerifyAccessToken checks an access token offline, with no storage call:
// signature (EdDSA only, key chosen by kid among the engine's keys), typ,
// iss, aud and expiry with the configured leeway. It returns ErrExpiredToken
// or ErrInvalidToken.
func (e *Engine) VerifyAccessToken(token string) (*AccessClaims, error) {
	return verifyAccessToken(e.keys.current(), token, e.cfg.Issuer, e.cfg.Audience, e.now(), e.cfg.Leeway)
}

// Principal is an authenticated caller: the verified claims and the user as
// stored now. Authorize on User.Role, not Claims.Role.
type Principal struct {
	Claims *AccessClaims
	User   *User
}

// Authenticate verifies an access token and then, in one indexed read,
// checks that the user is active, that the token's version is current and
// that its session is live. It returns ErrInvalidToken, ErrExpiredToken,
// ErrRevokedToken (session ended or token version outdated) or
// ErrInactiveUser.
func (e *Engine) Authenticate(ctx context.Context, token string) (*Principal, error) {
	c, err := e.VerifyAccessToken(token)
	if errors.Is(err, ErrInvalidToken) && e.unknownKey(token) {
		// Another instance may have started signing with a key this one has
		// not loaded yet.
		e.keys.reloadIfStale(ctx)
		c, err = e.VerifyAccessToken(token)
	}
	if err != nil {
		return nil, err
	}
	u, live, err := e.store.AuthState(ctx, c.UserID, c.SessionID, e.now())
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, ErrInvalidToken
	case err != nil:
		return nil, fmt.Errorf("latchkey: authenticate: %w", err)
	case !u.IsActive:
		return nil, ErrInactiveUser
	case u.TokenVersion != c.TokenVersion || !live:
		return nil, ErrRevokedToken
	}
	return &Principal{Claims: c, User: u}, nil
}

// unknownKey reports whether token names a kid the key ring lacks.
func (e *Engine) unknownKey(token string) bool {
	kid, ok := peekKeyID(token)
	return ok && e.keys.current().verifier(kid) == nil
}
