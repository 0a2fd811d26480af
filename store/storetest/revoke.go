package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
)

var revokeTests = []test{
	{"RevokeSession", testRevokeSession},
	{"RevokeSessionTwice", testRevokeSessionTwice},
	{"RevokeSessionUnknown", testRevokeSessionUnknown},
	{"RevokeSessionExpired", testRevokeSessionExpired},
	{"RevokeSessionInTx", testRevokeSessionInTx},
	{"RevokeUserSessionsExcept", testRevokeUserSessionsExcept},
	{"RevokeUserSessionsAll", testRevokeUserSessionsAll},
	{"RevokeUserSessionsNone", testRevokeUserSessionsNone},
}

// testRevokeSession sets endedat and the reason and nothing else.
func testRevokeSession(t *testing.T, s latchkey.Store) {
	u := addUser(t, s)
	x := addSession(t, s, u.ID)
	other := addSession(t, s, u.ID)
	if err := s.RevokeSession(t.Context(), x.ID, latchkey.RevokeLogout, base); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	want := *x
	want.RevokedAt, want.RevokeReason = base, latchkey.RevokeLogout
	checkSession(t, "revoked session", getSession(t, s, x.ID), &want)
	checkSession(t, "other session", getSession(t, s, other.ID), other)
}

// testRevokeSessionTwice checks that the first revocation wins: the second
// returns ErrNotFound and keeps the first time and reason.
func testRevokeSessionTwice(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	u := addUser(t, s)
	x := addSession(t, s, u.ID)
	if err := s.RevokeSession(ctx, x.ID, latchkey.RevokeReuseDetected, base); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	err := s.RevokeSession(ctx, x.ID, latchkey.RevokeLogout, base.Add(time.Second))
	if !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("RevokeSession(again) = %v, want ErrNotFound", err)
	}
	want := *x
	want.RevokedAt, want.RevokeReason = base, latchkey.RevokeReuseDetected
	checkSession(t, "session revoked twice", getSession(t, s, x.ID), &want)

	// A session created revoked cannot be revoked either.
	y := addSession(t, s, u.ID, revoked)
	if err := s.RevokeSession(ctx, y.ID, latchkey.RevokeAdmin, base); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("RevokeSession(created revoked) = %v, want ErrNotFound", err)
	}
	checkSession(t, "session created revoked", getSession(t, s, y.ID), y)
}

func testRevokeSessionUnknown(t *testing.T, s latchkey.Store) {
	u := addUser(t, s)
	x := addSession(t, s, u.ID)
	for _, id := range []uuid.UUID{uuid.New(), uuid.Nil} {
		if err := s.RevokeSession(t.Context(), id, latchkey.RevokeLogout, base); !errors.Is(err, latchkey.ErrNotFound) {
			t.Errorf("RevokeSession(%s) = %v, want ErrNotFound", id, err)
		}
	}
	checkSession(t, "existing session", getSession(t, s, x.ID), x)
}

// testRevokeSessionExpired revokes a session past its deadlines: it is
// unrevoked, so the revocation succeeds.
func testRevokeSessionExpired(t *testing.T, s latchkey.Store) {
	u := addUser(t, s)
	x := addSession(t, s, u.ID, func(x *latchkey.Session) {
		x.IdleDeadline, x.AbsoluteDeadline = base.Add(-day), base.Add(-time.Hour)
	})
	if err := s.RevokeSession(t.Context(), x.ID, latchkey.RevokeAdmin, base); err != nil {
		t.Fatalf("RevokeSession(expired session): %v", err)
	}
	want := *x
	want.RevokedAt, want.RevokeReason = base, latchkey.RevokeAdmin
	checkSession(t, "revoked session", getSession(t, s, x.ID), &want)
}

// testRevokeSessionInTx revokes and appends an event in one transaction, as
// reuse detection does: both or neither.
func testRevokeSessionInTx(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	u := addUser(t, s)
	x := addSession(t, s, u.ID)
	errRollback := errors.New("roll back")
	for _, fail := range []bool{true, false} {
		err := s.InTx(ctx, func(tx latchkey.Store) error {
			if err := tx.RevokeSession(ctx, x.ID, latchkey.RevokeReuseDetected, base); err != nil {
				return err
			}
			if err := tx.AppendEvent(ctx, &latchkey.Event{At: base, UserID: u.ID, SessionID: x.ID,
				Kind: latchkey.EventReuseDetected}); err != nil {
				return err
			}
			if fail {
				return errRollback
			}
			return nil
		})
		if fail {
			if !errors.Is(err, errRollback) {
				t.Fatalf("InTx = %v, want %v", err, errRollback)
			}
			checkSession(t, "session after rolled-back revocation", getSession(t, s, x.ID), x)
			if es := listEvents(t, s, latchkey.EventFilter{}); len(es) != 0 {
				t.Errorf("events after rollback: got %d, want 0", len(es))
			}
			continue
		}
		if err != nil {
			t.Fatalf("InTx: %v", err)
		}
		want := *x
		want.RevokedAt, want.RevokeReason = base, latchkey.RevokeReuseDetected
		checkSession(t, "session after committed revocation", getSession(t, s, x.ID), &want)
		if es := listEvents(t, s, latchkey.EventFilter{}); len(es) != 1 {
			t.Errorf("events after commit: got %d, want 1", len(es))
		}
	}
}

// userSessions is a user's two live sessions, one past its idle deadline
// (unrevoked, so RevokeUserSessions counts it) and one already revoked, and
// a live session of another user.
type userSessions struct {
	user, other                  *latchkey.User
	live1, live2, expired, ended *latchkey.Session
	othersSession                *latchkey.Session
}

func addUserSessions(t *testing.T, s latchkey.Store) userSessions {
	t.Helper()
	var us userSessions
	us.user, us.other = addUser(t, s), addUser(t, s)
	us.live1 = addSession(t, s, us.user.ID)
	us.live2 = addSession(t, s, us.user.ID, func(x *latchkey.Session) { x.Mode = latchkey.ModeMobile })
	us.expired = addSession(t, s, us.user.ID, func(x *latchkey.Session) { x.IdleDeadline = base.Add(-time.Hour) })
	us.ended = addSession(t, s, us.user.ID, revoked)
	us.othersSession = addSession(t, s, us.other.ID)
	return us
}

// checkRevoked checks that each of xs is stored revoked at base for reason,
// and otherwise unchanged.
func checkRevoked(t *testing.T, s latchkey.Store, reason latchkey.RevokeReason, xs ...*latchkey.Session) {
	t.Helper()
	for _, x := range xs {
		want := *x
		want.RevokedAt, want.RevokeReason = base, reason
		checkSession(t, "revoked session", getSession(t, s, x.ID), &want)
	}
}

func testRevokeUserSessionsExcept(t *testing.T, s latchkey.Store) {
	us := addUserSessions(t, s)
	n, err := s.RevokeUserSessions(t.Context(), us.user.ID, us.live1.ID, latchkey.RevokePasswordChanged, base)
	if err != nil {
		t.Fatalf("RevokeUserSessions: %v", err)
	}
	if n != 2 {
		t.Errorf("RevokeUserSessions = %d, want 2 (live and expired, not the kept or the revoked one)", n)
	}
	checkRevoked(t, s, latchkey.RevokePasswordChanged, us.live2, us.expired)
	checkUnchanged(t, s, us.live1, us.ended, us.othersSession)
}

func testRevokeUserSessionsAll(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	us := addUserSessions(t, s)
	n, err := s.RevokeUserSessions(ctx, us.user.ID, uuid.Nil, latchkey.RevokeLogoutAll, base)
	if err != nil {
		t.Fatalf("RevokeUserSessions: %v", err)
	}
	if n != 3 {
		t.Errorf("RevokeUserSessions = %d, want 3", n)
	}
	checkRevoked(t, s, latchkey.RevokeLogoutAll, us.live1, us.live2, us.expired)
	checkUnchanged(t, s, us.ended, us.othersSession)

	// Nothing is left to revoke.
	n, err = s.RevokeUserSessions(ctx, us.user.ID, uuid.Nil, latchkey.RevokeUserDeactivated, base.Add(time.Second))
	if err != nil || n != 0 {
		t.Errorf("RevokeUserSessions(again) = %d, %v; want 0, nil", n, err)
	}
	checkRevoked(t, s, latchkey.RevokeLogoutAll, us.live1, us.live2, us.expired)

	// Naming another user's session as the exception keeps nothing of this
	// user's and touches nothing of the other's.
	fresh := addSession(t, s, us.user.ID)
	n, err = s.RevokeUserSessions(ctx, us.user.ID, us.othersSession.ID, latchkey.RevokeLogoutAll, base)
	if err != nil || n != 1 {
		t.Errorf("RevokeUserSessions(except another user's session) = %d, %v; want 1, nil", n, err)
	}
	checkRevoked(t, s, latchkey.RevokeLogoutAll, fresh)
	checkUnchanged(t, s, us.othersSession)
}

// testRevokeUserSessionsNone revokes for a user with no sessions and for an
// unknown user: zero, no error.
func testRevokeUserSessionsNone(t *testing.T, s latchkey.Store) {
	u := addUser(t, s)
	other := addUser(t, s)
	x := addSession(t, s, other.ID)
	for _, id := range []uuid.UUID{u.ID, uuid.Must(uuid.NewV7())} {
		n, err := s.RevokeUserSessions(t.Context(), id, uuid.Nil, latchkey.RevokeLogoutAll, base)
		if err != nil || n != 0 {
			t.Errorf("RevokeUserSessions(%s) = %d, %v; want 0, nil", id, n, err)
		}
	}
	checkUnchanged(t, s, x)
}
