package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/latchkey-dev/latchkey"
)

// The concurrency section checks that each conditional write is atomic on
// its own: callers racing on one condition produce exactly one winner,
// without relying on a single writer, a lock in the caller or a retry.
var concurrencyTests = []test{
	{"RotateSession", testConcurrentRotate},
	{"InsertKeyIfAbsent", testConcurrentInsertKey},
	{"CreateUser", testConcurrentCreateUser},
	{"RevokeSession", testConcurrentRevoke},
}

// race runs n calls of fn at once: every goroutine waits on one barrier,
// released when all have started, so that the calls overlap as much as the
// scheduler allows. It returns each call's error by index.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	return errs
}

// oneWinner checks that exactly one of errs is nil and the rest match want,
// and returns the winner's index.
func oneWinner(t *testing.T, what string, errs []error, want error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner < 0:
			winner = i
		case err == nil:
			t.Errorf("%s: calls %d and %d both succeeded, want exactly one", what, winner, i)
		case !errors.Is(err, want):
			t.Errorf("%s: call %d: %v, want %v", what, i, err, want)
		}
	}
	if winner < 0 {
		t.Fatalf("%s: no call succeeded, want exactly one", what)
	}
	return winner
}

// testConcurrentRotate presents one token 32 times at once: the session
// advances exactly one generation.
func testConcurrentRotate(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	const n = 32
	u := addUser(t, s)
	x := addSession(t, s, u.ID)
	r := rotation(x)
	results := make([]*latchkey.Rotated, n)
	errs := race(n, func(i int) error {
		var err error
		results[i], err = s.RotateSession(ctx, r)
		return err
	})
	w := oneWinner(t, "RotateSession", errs, latchkey.ErrNotFound)
	checkRotated(t, "winning RotateSession", results[w], &latchkey.Rotated{
		UserID: u.ID, Role: u.Role, TokenVersion: u.TokenVersion, Generation: x.Generation + 1,
		IdleDeadline: r.IdleDeadline, AbsoluteDeadline: x.AbsoluteDeadline,
	})
	checkSession(t, "session after racing rotations", getSession(t, s, x.ID), rotated(x, r))
}

// testConcurrentInsertKey has 16 instances create the first key of a purpose
// at once, each with its own id: one key is stored.
func testConcurrentInsertKey(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	const n = 16
	keys := make([]*latchkey.KeyRecord, n)
	for i := range keys {
		keys[i] = newKey(latchkey.KeySigning, 1)
		keys[i].ID = fmt.Sprintf("signing-instance-%d", i)
	}
	inserted := make([]bool, n)
	errs := race(n, func(i int) error {
		var err error
		inserted[i], err = s.InsertKeyIfAbsent(ctx, keys[i])
		return err
	})
	winner := -1
	for i := range n {
		switch {
		case errs[i] != nil:
			t.Errorf("InsertKeyIfAbsent %d: %v", i, errs[i])
		case inserted[i] && winner >= 0:
			t.Errorf("InsertKeyIfAbsent %d and %d both inserted, want exactly one", winner, i)
		case inserted[i]:
			winner = i
		}
	}
	if winner < 0 {
		t.Fatalf("no InsertKeyIfAbsent inserted, want exactly one")
	}
	stored, err := s.Keys(ctx)
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	if len(stored) != 1 {
		t.Fatalf("Keys: got %d keys, want 1", len(stored))
	}
	checkKey(t, "stored key", stored[0], keys[winner])
}

// testConcurrentCreateUser registers one email 16 times at once: one
// account, the others ErrEmailTaken.
func testConcurrentCreateUser(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	const n = 16
	users := make([]*latchkey.User, n)
	for i := range users {
		users[i] = newUser()
		users[i].Email = "race@example.com"
	}
	errs := race(n, func(i int) error { return s.CreateUser(ctx, users[i]) })
	w := oneWinner(t, "CreateUser", errs, latchkey.ErrEmailTaken)
	got, err := s.UserByEmail(ctx, "race@example.com")
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	checkUser(t, "registered user", got, users[w])
}

// testConcurrentRevoke revokes one session 16 times at once with different
// reasons: one revocation, whose reason is stored.
func testConcurrentRevoke(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	const n = 16
	u := addUser(t, s)
	x := addSession(t, s, u.ID)
	reasons := []latchkey.RevokeReason{latchkey.RevokeLogout, latchkey.RevokeReuseDetected,
		latchkey.RevokeAdmin, latchkey.RevokeUserDeactivated}
	errs := race(n, func(i int) error {
		return s.RevokeSession(ctx, x.ID, reasons[i%len(reasons)], base)
	})
	w := oneWinner(t, "RevokeSession", errs, latchkey.ErrNotFound)
	want := *x
	want.RevokedAt, want.RevokeReason = base, reasons[w%len(reasons)]
	checkSession(t, "revoked session", getSession(t, s, x.ID), &want)
}
