package latchkey

import (
	"errors"
	"fmt"
)

// Sentinel errors returned by the engine and by stores. Callers test for them
// with errors.Is; adapters wrap them with context.
var (
	// ErrInvalidToken reports a token that cannot be verified: malformed,
	// forged, presented in the wrong mode, or too far behind its session.
	// Nothing changes when it is returned.
	ErrInvalidToken = errors.New("latchkey: invalid token")
	// ErrExpiredToken reports a verified token whose idle or absolute
	// deadline has passed.
	ErrExpiredToken = errors.New("latchkey: token expired")
	// ErrRevokedToken reports a verified token whose session has ended.
	ErrRevokedToken = errors.New("latchkey: token revoked")
	// ErrTokenReused reports a refresh token presented again after it was
	// rotated, outside the grace window. The session has been revoked.
	ErrTokenReused = errors.New("latchkey: refresh token reused; session revoked")
	// ErrInvalidCredentials reports a wrong email or password, or an inactive
	// account at sign-in (which answers like a wrong password).
	ErrInvalidCredentials = errors.New("latchkey: invalid credentials")
	// ErrInactiveUser reports that the token's user has been deactivated.
	ErrInactiveUser = errors.New("latchkey: user inactive")
	// ErrEmailTaken reports a registration or email change to an address that
	// another account already uses.
	ErrEmailTaken = errors.New("latchkey: email already registered")
	// ErrWeakPassword reports a password refused by the policy because it is
	// common or easily guessed. It is wrapped in a *ValidationError.
	ErrWeakPassword = errors.New("latchkey: password too weak")
	// ErrOverloaded reports that the password-hashing queue is full; the
	// caller should retry later (HTTP 503).
	ErrOverloaded = errors.New("latchkey: overloaded, try again later")
	// ErrNotFound reports that a user, session or key does not exist (or, for
	// a conditional store write, that no row matched).
	ErrNotFound = errors.New("latchkey: not found")
	// ErrWrongMasterKey reports that the configured master key cannot decrypt
	// the keys stored in the database: it is not the key the database was
	// created with.
	ErrWrongMasterKey = errors.New("latchkey: master key does not match the stored keys")
)

// ValidationError reports bad input: Field names the input (for example
// "email" or "password") and Reason says what is wrong with it, without
// repeating the value.
type ValidationError struct {
	Field  string
	Reason string
	// Err is an optional sentinel this error also matches (ErrWeakPassword).
	Err error
}

// Error implements error.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("latchkey: invalid %s: %s", e.Field, e.Reason)
}

// Unwrap lets errors.Is see the sentinel behind a validation error.
func (e *ValidationError) Unwrap() error { return e.Err }

func invalid(field, reason string) error {
	return &ValidationError{Field: field, Reason: reason}
}
