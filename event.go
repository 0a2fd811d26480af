package latchkey

import (
	"time"

	"github.com/google/uuid"
)

// EventKind names a security event.
type EventKind string

// Security event kinds.
const (
	EventSignIn          EventKind = "sign_in"
	EventSignInFailed    EventKind = "sign_in_failed"
	EventRegistered      EventKind = "registered"
	EventGraceAnswer     EventKind = "grace_answer"
	EventReuseDetected   EventKind = "reuse_detected"
	EventStaleToken      EventKind = "stale_token"
	EventLostRotation    EventKind = "lost_rotation_recovered"
	EventLogout          EventKind = "logout"
	EventLogoutAll       EventKind = "logout_all"
	EventSessionRevoked  EventKind = "session_revoked"
	EventPasswordChanged EventKind = "password_changed"
	EventUserDeactivated EventKind = "user_deactivated"
	EventUserActivated   EventKind = "user_activated"
	EventUserDeleted     EventKind = "user_deleted"
	EventEmailChanged    EventKind = "email_changed"
	EventRoleChanged     EventKind = "role_changed"
	EventKeyCreated      EventKind = "key_created"
	EventKeyRevoked      EventKind = "key_revoked"
)

// Event is an append-only security record. It has no foreign key to users,
// so a deleted user's history stays.
type Event struct {
	ID        int64
	At        time.Time
	UserID    uuid.UUID // uuid.Nil when unknown
	SessionID uuid.UUID // uuid.Nil when none
	Kind      EventKind
	IP        string
	UserAgent string
	// Detail is free text such as the cause of a reuse detection. It never
	// holds a token, secret or password.
	Detail string
}

// EventFilter selects events; zero fields match everything.
type EventFilter struct {
	UserID    uuid.UUID
	SessionID uuid.UUID
	Kind      EventKind
	Limit     int // 0 means 100
}
