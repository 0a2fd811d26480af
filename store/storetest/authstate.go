package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
)

var authStateTests = []test{
	{"Live", testAuthStateLive},
	{"NotLive", testAuthStateNotLive},
	{"UnknownUser", testAuthStateUnknownUser},
}

func testAuthStateLive(t *testing.T, s latchkey.Store) {
	u := addUser(t, s, func(u *latchkey.User) { u.Role, u.TokenVersion, u.IsVerified = latchkey.RoleAdmin, 9, true })
	x := addSession(t, s, u.ID)
	got, live, err := s.AuthState(t.Context(), u.ID, x.ID, base)
	if err != nil {
		t.Fatalf("AuthState: %v", err)
	}
	if !live {
		t.Errorf("AuthState(live session) live = false, want true")
	}
	checkUser(t, "AuthState", got, u)
}

// testAuthStateNotLive returns the user with live false for every way a
// session can fail to be this user's live session.
func testAuthStateNotLive(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	u := addUser(t, s)
	other := addUser(t, s)
	cases := []struct {
		name string
		id   uuid.UUID
	}{
		{"Revoked", addSession(t, s, u.ID, revoked).ID},
		{"RevokedJustNow", addSession(t, s, u.ID, func(x *latchkey.Session) {
			x.RevokedAt, x.RevokeReason = base, latchkey.RevokeLogout
		}).ID},
		{"IdleDeadlinePassed", addSession(t, s, u.ID, func(x *latchkey.Session) { x.IdleDeadline = base.Add(-time.Second) }).ID},
		{"IdleDeadlineIsNow", addSession(t, s, u.ID, func(x *latchkey.Session) { x.IdleDeadline = base }).ID},
		{"AbsoluteDeadlinePassed", addSession(t, s, u.ID, func(x *latchkey.Session) { x.AbsoluteDeadline = base.Add(-day) }).ID},
		{"AbsoluteDeadlineIsNow", addSession(t, s, u.ID, func(x *latchkey.Session) { x.AbsoluteDeadline = base }).ID},
		{"AnotherUsersSession", addSession(t, s, other.ID).ID},
		{"UnknownSession", uuid.New()},
		{"NilSession", uuid.Nil},
	}
	addSession(t, s, u.ID) // a live session the cases must not pick up
	for _, c := range cases {
		got, live, err := s.AuthState(ctx, u.ID, c.id, base)
		if err != nil {
			t.Errorf("AuthState(%s): %v", c.name, err)
			continue
		}
		if live {
			t.Errorf("AuthState(%s) live = true, want false", c.name)
		}
		checkUser(t, "AuthState("+c.name+")", got, u)
	}
}

func testAuthStateUnknownUser(t *testing.T, s latchkey.Store) {
	u := addUser(t, s)
	x := addSession(t, s, u.ID)
	for _, sid := range []uuid.UUID{x.ID, uuid.New()} {
		got, live, err := s.AuthState(t.Context(), uuid.Must(uuid.NewV7()), sid, base)
		if !errors.Is(err, latchkey.ErrNotFound) {
			t.Errorf("AuthState(unknown user, session %s) = %v, %v, %v; want ErrNotFound", sid, got, live, err)
		}
	}
}
