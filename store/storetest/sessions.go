package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
)

var sessionTests = []test{
	{"CreateSessionRoundTrip", testCreateSessionRoundTrip},
	{"CreateSessionUnknownUser", testCreateSessionUnknownUser},
	{"CreateSessionStaleVersion", testCreateSessionStaleVersion},
	{"SessionByIDNotFound", testSessionByIDNotFound},
	{"ListSessionsLiveNewestFirst", testListSessionsLiveNewestFirst},
	{"ListSessionsNone", testListSessionsNone},
}

// testCreateSessionRoundTrip stores a session with every field set (one that
// has rotated and been revoked, as the test kit makes them) and a fresh one
// with the optional times zero, and reads both back.
func testCreateSessionRoundTrip(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	u := addUser(t, s)

	full := newSession(u.ID)
	full.Mode = latchkey.ModeMobile
	full.Generation = 1<<40 + 3
	full.RotatedAt = base.Add(-time.Minute + time.Microsecond)
	full.RotatedUserAgent = "okhttp/4.12.0"
	full.RotatedDeviceID = "device-2"
	full.LastUsedAt = full.RotatedAt
	full.RevokedAt = base.Add(-time.Microsecond)
	full.RevokeReason = latchkey.RevokeReuseDetected
	full.RotationKeyID = "rotation-key-9"
	full.DeviceID = "6f1c2b7e-device"
	full.DeviceName = "Pixel 9 — ünïcödé"
	full.UserAgent = "okhttp/4.11.0"
	full.IPAddress = "2001:db8::1"

	fresh := newSession(u.ID)

	for _, x := range []*latchkey.Session{full, fresh} {
		want := *x
		want.CurrentHash = slices.Clone(x.CurrentHash)
		want.NextHash = slices.Clone(x.NextHash)
		if err := s.CreateSession(ctx, x, u.TokenVersion); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		checkSession(t, "SessionByID", getSession(t, s, x.ID), &want)
	}
	if got := getSession(t, s, fresh.ID); !got.RotatedAt.IsZero() || !got.RevokedAt.IsZero() || got.RevokeReason != "" {
		t.Errorf("fresh session: RotatedAt, RevokedAt, RevokeReason = %v, %v, %q; want zero, zero, empty",
			got.RotatedAt, got.RevokedAt, got.RevokeReason)
	}
}

func testCreateSessionUnknownUser(t *testing.T, s latchkey.Store) {
	addUser(t, s)
	x := newSession(uuid.Must(uuid.NewV7()))
	if err := s.CreateSession(t.Context(), x, 0); !errors.Is(err, latchkey.ErrNotFound) {
		t.Fatalf("CreateSession(unknown user) = %v, want ErrNotFound", err)
	}
	if _, err := s.SessionByID(t.Context(), x.ID); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("SessionByID(rejected session) error = %v, want ErrNotFound", err)
	}
}

// testCreateSessionStaleVersion refuses a session for a user whose token
// version moved on (a password change, logout-all or deactivation raced the
// sign-in), and accepts one at the current version.
func testCreateSessionStaleVersion(t *testing.T, s latchkey.Store) {
	u := addUser(t, s)
	if _, err := s.UpdateUser(t.Context(), u.ID, latchkey.UserPatch{BumpTokenVersion: true}, base); err != nil {
		t.Fatal(err)
	}
	x := newSession(u.ID)
	if err := s.CreateSession(t.Context(), x, u.TokenVersion); !errors.Is(err, latchkey.ErrNotFound) {
		t.Fatalf("CreateSession at a stale token version = %v, want ErrNotFound", err)
	}
	if _, err := s.SessionByID(t.Context(), x.ID); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("SessionByID(rejected session) error = %v, want ErrNotFound", err)
	}
	if err := s.CreateSession(t.Context(), x, u.TokenVersion+1); err != nil {
		t.Fatalf("CreateSession at the current version: %v", err)
	}
}

func testSessionByIDNotFound(t *testing.T, s latchkey.Store) {
	u := addUser(t, s)
	addSession(t, s, u.ID)
	for _, id := range []uuid.UUID{uuid.New(), uuid.Nil, u.ID} {
		x, err := s.SessionByID(t.Context(), id)
		if !errors.Is(err, latchkey.ErrNotFound) {
			t.Errorf("SessionByID(%s) = %v, %v; want ErrNotFound", id, x, err)
		}
	}
}

// testListSessionsLiveNewestFirst stores live sessions out of creation order
// among sessions that are revoked, past a deadline (a deadline equal to now
// counts as passed) or another user's.
func testListSessionsLiveNewestFirst(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	u := addUser(t, s)
	other := addUser(t, s)
	created := func(d time.Duration) func(*latchkey.Session) {
		return func(x *latchkey.Session) {
			x.CreatedAt, x.LastUsedAt = base.Add(-d), base.Add(-d)
			x.IdleDeadline, x.AbsoluteDeadline = x.CreatedAt.Add(idleTTL), x.CreatedAt.Add(absoluteTTL)
		}
	}
	oldest := addSession(t, s, u.ID, created(3*time.Hour))
	newest := addSession(t, s, u.ID, created(time.Hour), func(x *latchkey.Session) { x.Mode = latchkey.ModeMobile })
	middle := addSession(t, s, u.ID, created(2*time.Hour))
	addSession(t, s, u.ID, created(time.Minute), revoked)
	addSession(t, s, u.ID, created(time.Minute), func(x *latchkey.Session) { x.IdleDeadline = base })
	addSession(t, s, u.ID, created(time.Minute), func(x *latchkey.Session) { x.IdleDeadline = base.Add(-time.Microsecond) })
	addSession(t, s, u.ID, created(time.Minute), func(x *latchkey.Session) { x.AbsoluteDeadline = base })
	addSession(t, s, u.ID, created(time.Minute), func(x *latchkey.Session) { x.AbsoluteDeadline = base.Add(-day) })
	addSession(t, s, other.ID, created(time.Minute))

	got, err := s.ListSessions(ctx, u.ID, base)
	if err != nil {
		t.Fatalf("ListSessions: %v", err)
	}
	want := []*latchkey.Session{newest, middle, oldest}
	if !slices.Equal(sessionIDs(got), sessionIDs(want)) {
		t.Fatalf("ListSessions ids = %v, want %v (newest first)", sessionIDs(got), sessionIDs(want))
	}
	for i := range want {
		checkSession(t, "ListSessions", got[i], want[i])
	}

	// At a later now the oldest session's idle deadline has passed too.
	later := oldest.IdleDeadline
	got, err = s.ListSessions(ctx, u.ID, later)
	if err != nil {
		t.Fatalf("ListSessions(later): %v", err)
	}
	if want := []uuid.UUID{newest.ID, middle.ID}; !slices.Equal(sessionIDs(got), want) {
		t.Errorf("ListSessions(later) ids = %v, want %v", sessionIDs(got), want)
	}
}

func testListSessionsNone(t *testing.T, s latchkey.Store) {
	u := addUser(t, s)
	other := addUser(t, s)
	addSession(t, s, other.ID)
	for _, id := range []uuid.UUID{u.ID, uuid.Must(uuid.NewV7())} {
		got, err := s.ListSessions(t.Context(), id, base)
		if err != nil {
			t.Fatalf("ListSessions(%s): %v", id, err)
		}
		if len(got) != 0 {
			t.Errorf("ListSessions(%s) returned %d sessions, want 0", id, len(got))
		}
	}
}
