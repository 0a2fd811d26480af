package storetest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
)

// base is the suite's clock: a fixed instant in UTC, truncated to the
// microsecond as the engine's clock is, with microsecond digits so that a
// store that loses precision (or rounds) is caught.
var base = time.Date(2031, time.May, 6, 7, 8, 9, 123456789, time.UTC).Truncate(time.Microsecond)

const (
	day         = 24 * time.Hour
	idleTTL     = 7 * day
	absoluteTTL = 30 * day
)

// hash returns a 32-byte digest of its arguments, standing in for the
// SHA-256 of a refresh-token secret.
func hash(parts ...any) []byte {
	h := sha256.Sum256(fmt.Append(nil, parts...))
	return h[:]
}

// newUser returns a valid, active user that is not stored yet, with a unique
// lower-case email.
func newUser() *latchkey.User {
	id := uuid.Must(uuid.NewV7())
	return &latchkey.User{
		ID:           id,
		Email:        "user-" + id.String() + "@example.com",
		FullName:     "Ada Lovelace",
		Role:         latchkey.RoleUser,
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
		IsActive:     true,
		CreatedAt:    base.Add(-2 * day),
		UpdatedAt:    base.Add(-day),
	}
}

// addUser stores newUser() after applying mods to it.
func addUser(t *testing.T, s latchkey.Store, mods ...func(*latchkey.User)) *latchkey.User {
	t.Helper()
	u := newUser()
	for _, m := range mods {
		m(u)
	}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	return u
}

// newSession returns a session of userID that is not stored yet: opened an
// hour before base, never rotated, live at base.
func newSession(userID uuid.UUID) *latchkey.Session {
	id := uuid.New()
	opened := base.Add(-time.Hour)
	return &latchkey.Session{
		ID:               id,
		UserID:           userID,
		Mode:             latchkey.ModeCookie,
		Generation:       1,
		CurrentHash:      hash("current", id),
		NextHash:         hash("next", id),
		CreatedAt:        opened,
		LastUsedAt:       opened,
		IdleDeadline:     opened.Add(idleTTL),
		AbsoluteDeadline: opened.Add(absoluteTTL),
		RotationKeyID:    "rotation-key-1",
		DeviceID:         "device-1",
		DeviceName:       "Ada's laptop",
		UserAgent:        "Mozilla/5.0 (X11; Linux x86_64)",
		IPAddress:        "203.0.113.7",
	}
}

// addSession stores newSession(userID) after applying mods to it.
func addSession(t *testing.T, s latchkey.Store, userID uuid.UUID, mods ...func(*latchkey.Session)) *latchkey.Session {
	t.Helper()
	x := newSession(userID)
	for _, m := range mods {
		m(x)
	}
	if err := s.CreateSession(t.Context(), x, getUser(t, s, userID).TokenVersion); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return x
}

// revoked marks a session as revoked (by logout) a minute before base.
func revoked(x *latchkey.Session) {
	x.RevokedAt = base.Add(-time.Minute)
	x.RevokeReason = latchkey.RevokeLogout
}

// inactive marks a user as deactivated.
func inactive(u *latchkey.User) { u.IsActive = false }

// getSession reads a session that must exist.
func getSession(t *testing.T, s latchkey.Store, id uuid.UUID) *latchkey.Session {
	t.Helper()
	x, err := s.SessionByID(t.Context(), id)
	if err != nil {
		t.Fatalf("SessionByID(%s): %v", id, err)
	}
	return x
}

// getUser reads a user that must exist.
func getUser(t *testing.T, s latchkey.Store, id uuid.UUID) *latchkey.User {
	t.Helper()
	u, err := s.UserByID(t.Context(), id)
	if err != nil {
		t.Fatalf("UserByID(%s): %v", id, err)
	}
	return u
}

// listEvents lists events that must be readable.
func listEvents(t *testing.T, s latchkey.Store, f latchkey.EventFilter) []*latchkey.Event {
	t.Helper()
	es, err := s.ListEvents(t.Context(), f)
	if err != nil {
		t.Fatalf("ListEvents(%+v): %v", f, err)
	}
	return es
}

// diffs collects field differences so that one check reports them all.
type diffs []string

func field[T comparable](d *diffs, name string, got, want T) {
	if got != want {
		*d = append(*d, fmt.Sprintf("%s = %v, want %v", name, got, want))
	}
}

// timeField compares with time.Equal: stores need not keep the location.
func timeField(d *diffs, name string, got, want time.Time) {
	if !got.Equal(want) {
		*d = append(*d, fmt.Sprintf("%s = %v, want %v", name, got, want))
	}
}

// bytesField treats nil and empty alike: stores need not keep the difference.
func bytesField(d *diffs, name string, got, want []byte) {
	if !bytes.Equal(got, want) {
		*d = append(*d, fmt.Sprintf("%s = %x, want %x", name, got, want))
	}
}

func (d diffs) report(t *testing.T, what string) {
	t.Helper()
	for _, s := range d {
		t.Errorf("%s: %s", what, s)
	}
}

func checkUser(t *testing.T, what string, got, want *latchkey.User) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got nil user", what)
		return
	}
	var d diffs
	field(&d, "ID", got.ID, want.ID)
	field(&d, "Email", got.Email, want.Email)
	field(&d, "FullName", got.FullName, want.FullName)
	field(&d, "Role", got.Role, want.Role)
	field(&d, "PasswordHash", got.PasswordHash, want.PasswordHash)
	field(&d, "IsActive", got.IsActive, want.IsActive)
	field(&d, "IsVerified", got.IsVerified, want.IsVerified)
	field(&d, "TokenVersion", got.TokenVersion, want.TokenVersion)
	timeField(&d, "CreatedAt", got.CreatedAt, want.CreatedAt)
	timeField(&d, "UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	d.report(t, what)
}

func checkSession(t *testing.T, what string, got, want *latchkey.Session) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got nil session", what)
		return
	}
	var d diffs
	field(&d, "ID", got.ID, want.ID)
	field(&d, "UserID", got.UserID, want.UserID)
	field(&d, "Mode", got.Mode, want.Mode)
	field(&d, "Generation", got.Generation, want.Generation)
	bytesField(&d, "CurrentHash", got.CurrentHash, want.CurrentHash)
	bytesField(&d, "NextHash", got.NextHash, want.NextHash)
	timeField(&d, "RotatedAt", got.RotatedAt, want.RotatedAt)
	field(&d, "RotatedUserAgent", got.RotatedUserAgent, want.RotatedUserAgent)
	field(&d, "RotatedDeviceID", got.RotatedDeviceID, want.RotatedDeviceID)
	timeField(&d, "CreatedAt", got.CreatedAt, want.CreatedAt)
	timeField(&d, "LastUsedAt", got.LastUsedAt, want.LastUsedAt)
	timeField(&d, "IdleDeadline", got.IdleDeadline, want.IdleDeadline)
	timeField(&d, "AbsoluteDeadline", got.AbsoluteDeadline, want.AbsoluteDeadline)
	timeField(&d, "RevokedAt", got.RevokedAt, want.RevokedAt)
	field(&d, "RevokeReason", got.RevokeReason, want.RevokeReason)
	field(&d, "RotationKeyID", got.RotationKeyID, want.RotationKeyID)
	field(&d, "DeviceID", got.DeviceID, want.DeviceID)
	field(&d, "DeviceName", got.DeviceName, want.DeviceName)
	field(&d, "UserAgent", got.UserAgent, want.UserAgent)
	field(&d, "IPAddress", got.IPAddress, want.IPAddress)
	d.report(t, what)
}

func checkRotated(t *testing.T, what string, got, want *latchkey.Rotated) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got nil Rotated", what)
		return
	}
	var d diffs
	field(&d, "UserID", got.UserID, want.UserID)
	field(&d, "Role", got.Role, want.Role)
	field(&d, "TokenVersion", got.TokenVersion, want.TokenVersion)
	field(&d, "Generation", got.Generation, want.Generation)
	timeField(&d, "IdleDeadline", got.IdleDeadline, want.IdleDeadline)
	timeField(&d, "AbsoluteDeadline", got.AbsoluteDeadline, want.AbsoluteDeadline)
	d.report(t, what)
}

// checkEvent compares everything but the ID, which the store assigns.
func checkEvent(t *testing.T, what string, got, want *latchkey.Event) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got nil event", what)
		return
	}
	var d diffs
	timeField(&d, "At", got.At, want.At)
	field(&d, "UserID", got.UserID, want.UserID)
	field(&d, "SessionID", got.SessionID, want.SessionID)
	field(&d, "Kind", got.Kind, want.Kind)
	field(&d, "IP", got.IP, want.IP)
	field(&d, "UserAgent", got.UserAgent, want.UserAgent)
	field(&d, "Detail", got.Detail, want.Detail)
	d.report(t, what)
}

func checkKey(t *testing.T, what string, got, want *latchkey.KeyRecord) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got nil key", what)
		return
	}
	var d diffs
	field(&d, "ID", got.ID, want.ID)
	field(&d, "Purpose", got.Purpose, want.Purpose)
	field(&d, "Seq", got.Seq, want.Seq)
	field(&d, "Algorithm", got.Algorithm, want.Algorithm)
	bytesField(&d, "Ciphertext", got.Ciphertext, want.Ciphertext)
	bytesField(&d, "PublicKey", got.PublicKey, want.PublicKey)
	timeField(&d, "CreatedAt", got.CreatedAt, want.CreatedAt)
	timeField(&d, "ActivateAt", got.ActivateAt, want.ActivateAt)
	timeField(&d, "RetiredAt", got.RetiredAt, want.RetiredAt)
	timeField(&d, "RevokedAt", got.RevokedAt, want.RevokedAt)
	d.report(t, what)
}

// checkUnchanged checks that each of xs is stored as it was created.
func checkUnchanged(t *testing.T, s latchkey.Store, xs ...*latchkey.Session) {
	t.Helper()
	for _, x := range xs {
		checkSession(t, "untouched session", getSession(t, s, x.ID), x)
	}
}

// sessionIDs returns the ids of xs in order, for comparing lists.
func sessionIDs(xs []*latchkey.Session) []uuid.UUID {
	ids := make([]uuid.UUID, len(xs))
	for i, x := range xs {
		ids[i] = x.ID
	}
	return ids
}

// eventIDs returns the ids of es in order, for comparing lists.
func eventIDs(es []*latchkey.Event) []int64 {
	ids := make([]int64, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	return ids
}
