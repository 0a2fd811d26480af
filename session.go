package latchkey

import (
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// Mode is the transport a session was opened for. A session's refresh token
// works only in its own mode: a browser cookie token is refused by the
// mobile endpoints and the other way round.
type Mode string

// Session modes.
const (
	ModeCookie Mode = "cookie"
	ModeMobile Mode = "mobile"
)

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool { return m == ModeCookie || m == ModeMobile }

// RevokeReason says why a session ended.
type RevokeReason string

// Reasons a session is revoked.
const (
	RevokeLogout          RevokeReason = "logout"
	RevokeLogoutAll       RevokeReason = "logout_all"
	RevokeReuseDetected   RevokeReason = "reuse_detected"
	RevokePasswordChanged RevokeReason = "password_changed"
	RevokeUserDeactivated RevokeReason = "user_deactivated"
	RevokeAdmin           RevokeReason = "admin"
	RevokeKeyCompromised  RevokeReason = "key_compromised"
)

// Device describes the client making a request. ID is a client-chosen device
// identifier; together with UserAgent it decides whether a retry is the same
// client (grace window) or someone else (reuse).
type Device struct {
	ID        string
	Name      string
	UserAgent string
	IP        string
}

// Session is one sign-in (the original service's "token family"). It is a
// single row however often its refresh token rotates.
type Session struct {
	ID     uuid.UUID
	UserID uuid.UUID
	Mode   Mode
	// Generation counts rotations; the refresh token currently valid carries
	// this generation.
	Generation uint64
	// CurrentHash is SHA-256 of the current generation's secret and NextHash
	// of the next one's (so that a rotation whose commit was lost still
	// verifies). Hashes are not secrets: they cannot be turned into tokens.
	CurrentHash []byte `json:"-"`
	NextHash    []byte `json:"-"`
	// RotatedAt is when the session last rotated, and RotatedUserAgent and
	// RotatedDeviceID who rotated it; they decide the grace window.
	RotatedAt        time.Time
	RotatedUserAgent string
	RotatedDeviceID  string
	CreatedAt        time.Time
	LastUsedAt       time.Time
	IdleDeadline     time.Time
	AbsoluteDeadline time.Time
	RevokedAt        time.Time // zero while live
	RevokeReason     RevokeReason
	// RotationKeyID names the key that derives this session's secret chain;
	// it is fixed at sign-in.
	RotationKeyID string
	DeviceID      string
	DeviceName    string
	UserAgent     string
	IPAddress     string
}

// Revoked reports whether the session has ended by revocation.
func (s *Session) Revoked() bool { return !s.RevokedAt.IsZero() }

// Live reports whether the session can still be used at now.
func (s *Session) Live(now time.Time) bool {
	return !s.Revoked() && now.Before(s.IdleDeadline) && now.Before(s.AbsoluteDeadline)
}

// LogValue logs the session's identity, never its hashes.
func (s *Session) LogValue() slog.Value {
	if s == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(slog.String("id", s.ID.String()), slog.String("user_id", s.UserID.String()),
		slog.Uint64("generation", s.Generation))
}
