// Package testhooks lets package latchkeytest build users and sessions
// through the engine's own code without a public way around the password
// policy: package latchkey sets these functions in its init, and only
// packages inside this module can import an internal package.
//
// The values are typed any because this package cannot import latchkey
// (latchkey imports it); latchkeytest asserts them back.
package testhooks

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// UserSpec describes a user written directly, with its password hashed but
// not checked against the policy (as the original factory did).
type UserSpec struct {
	Email, Password, FullName   string
	Admin, Inactive, Unverified bool
}

// SessionSpec describes a session opened directly.
type SessionSpec struct {
	UserID uuid.UUID
	Mobile bool
	// DeviceID, DeviceName, UserAgent and IP describe the signing-in client.
	DeviceID, DeviceName, UserAgent, IP string
	// ExpiresIn sets the idle deadline relative to now; zero means the
	// engine's idle lifetime; negative gives an expired token.
	ExpiresIn time.Duration
	// Rotations is how often the session has already rotated; the rotations
	// are dated outside the grace window.
	Rotations int
	Revoked   bool
}

var (
	// CreateUser(ctx, *latchkey.Engine, UserSpec) (*latchkey.User, error)
	CreateUser func(ctx context.Context, engine any, spec UserSpec) (any, error)
	// OpenSession(ctx, *latchkey.Engine, SessionSpec) returns the
	// *latchkey.Session and every refresh token of its chain, oldest first;
	// the last one is current.
	OpenSession func(ctx context.Context, engine any, spec SessionSpec) (session any, tokens []string, err error)
)
