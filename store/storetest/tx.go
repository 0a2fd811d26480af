package storetest

import (
	"errors"
	"testing"

	"github.com/latchkey-dev/latchkey"
)

var txTests = []test{
	{"Commit", testTxCommit},
	{"Rollback", testTxRollback},
	{"ReadsOwnWrites", testTxReadsOwnWrites},
	{"NestedCommit", testTxNestedCommit},
	{"NestedRunsInSameTx", testTxNestedRollback},
}

// errRollback is what the suite's transaction bodies return to roll back.
var errRollback = errors.New("storetest: roll back")

// testTxCommit writes through a transaction's store and finds everything
// after InTx returns nil.
func testTxCommit(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	u := newUser()
	x := newSession(u.ID)
	e := &latchkey.Event{At: base, UserID: u.ID, Kind: latchkey.EventRegistered}
	k := newKey(latchkey.KeyTag, 1)
	err := s.InTx(ctx, func(tx latchkey.Store) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		if err := tx.CreateSession(ctx, x, u.TokenVersion); err != nil {
			return err
		}
		if err := tx.AppendEvent(ctx, e); err != nil {
			return err
		}
		_, err := tx.InsertKeyIfAbsent(ctx, k)
		return err
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	checkUser(t, "committed user", getUser(t, s, u.ID), u)
	checkSession(t, "committed session", getSession(t, s, x.ID), x)
	if es := listEvents(t, s, latchkey.EventFilter{}); len(es) != 1 || es[0].ID != e.ID {
		t.Errorf("committed events: ids %v, want [%d]", eventIDs(es), e.ID)
	}
	if keys, err := s.Keys(ctx); err != nil || len(keys) != 1 {
		t.Errorf("committed keys: %d keys, %v; want 1, nil", len(keys), err)
	}
}

// testTxRollback makes every kind of write in a transaction that then
// fails: InTx returns the body's error and none of the writes is visible.
func testTxRollback(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	existing := addUser(t, s)
	live := addSession(t, s, existing.ID)
	toRotate := addSession(t, s, existing.ID)
	u := newUser()
	x := newSession(u.ID)
	name := "Rolled Back"
	err := s.InTx(ctx, func(tx latchkey.Store) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		if err := tx.CreateSession(ctx, x, u.TokenVersion); err != nil {
			return err
		}
		if _, err := tx.UpdateUser(ctx, existing.ID, latchkey.UserPatch{FullName: &name, BumpTokenVersion: true}, base); err != nil {
			return err
		}
		if _, err := tx.RotateSession(ctx, rotation(toRotate)); err != nil {
			return err
		}
		if err := tx.RevokeSession(ctx, live.ID, latchkey.RevokeAdmin, base); err != nil {
			return err
		}
		if err := tx.AppendEvent(ctx, &latchkey.Event{At: base, UserID: u.ID, Kind: latchkey.EventRegistered}); err != nil {
			return err
		}
		if _, err := tx.InsertKeyIfAbsent(ctx, newKey(latchkey.KeySigning, 1)); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("InTx = %v, want %v", err, errRollback)
	}
	if _, err := s.UserByID(ctx, u.ID); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("UserByID(rolled-back user) error = %v, want ErrNotFound", err)
	}
	if _, err := s.UserByEmail(ctx, u.Email); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("UserByEmail(rolled-back user) error = %v, want ErrNotFound", err)
	}
	if _, err := s.SessionByID(ctx, x.ID); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("SessionByID(rolled-back session) error = %v, want ErrNotFound", err)
	}
	checkUser(t, "user updated in rolled-back tx", getUser(t, s, existing.ID), existing)
	checkUnchanged(t, s, live, toRotate)
	if es := listEvents(t, s, latchkey.EventFilter{}); len(es) != 0 {
		t.Errorf("events after rollback: got %d, want 0", len(es))
	}
	if keys, err := s.Keys(ctx); err != nil || len(keys) != 0 {
		t.Errorf("keys after rollback: %d keys, %v; want 0, nil", len(keys), err)
	}

	// The email of the rolled-back user is free again.
	if err := s.CreateUser(ctx, u); err != nil {
		t.Errorf("CreateUser(after rollback): %v", err)
	}
}

// testTxReadsOwnWrites reads, on the transaction's store, what the
// transaction wrote.
func testTxReadsOwnWrites(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	u := newUser()
	x := newSession(u.ID)
	err := s.InTx(ctx, func(tx latchkey.Store) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		if err := tx.CreateSession(ctx, x, u.TokenVersion); err != nil {
			return err
		}
		got, err := tx.UserByEmail(ctx, u.Email)
		if err != nil {
			return err
		}
		checkUser(t, "user read in its tx", got, u)
		sessions, err := tx.ListSessions(ctx, u.ID, base)
		if err != nil {
			return err
		}
		if len(sessions) != 1 || sessions[0].ID != x.ID {
			t.Errorf("ListSessions in tx: ids %v, want [%s]", sessionIDs(sessions), x.ID)
		}
		_, live, err := tx.AuthState(ctx, u.ID, x.ID, base)
		if err != nil {
			return err
		}
		if !live {
			t.Errorf("AuthState in tx: live = false, want true")
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("InTx = %v, want %v", err, errRollback)
	}
}

// testTxNestedCommit calls InTx on a transaction's store; its writes commit
// with the outer transaction.
func testTxNestedCommit(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	outer, inner := newUser(), newUser()
	err := s.InTx(ctx, func(tx latchkey.Store) error {
		if err := tx.CreateUser(ctx, outer); err != nil {
			return err
		}
		return tx.InTx(ctx, func(tx latchkey.Store) error {
			// The nested body sees the outer transaction's writes.
			if _, err := tx.UserByID(ctx, outer.ID); err != nil {
				return err
			}
			return tx.CreateUser(ctx, inner)
		})
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	checkUser(t, "outer user", getUser(t, s, outer.ID), outer)
	checkUser(t, "inner user", getUser(t, s, inner.ID), inner)
}

// testTxNestedRollback shows that a nested InTx runs in the outer
// transaction: what it wrote, and returned nil for, is rolled back with the
// outer one; and a nested body's error reaches the outer InTx.
func testTxNestedRollback(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	outer, inner := newUser(), newUser()
	err := s.InTx(ctx, func(tx latchkey.Store) error {
		if err := tx.CreateUser(ctx, outer); err != nil {
			return err
		}
		if err := tx.InTx(ctx, func(tx latchkey.Store) error { return tx.CreateUser(ctx, inner) }); err != nil {
			return err
		}
		if _, err := tx.UserByID(ctx, inner.ID); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("InTx = %v, want %v", err, errRollback)
	}
	for _, u := range []*latchkey.User{outer, inner} {
		if _, err := s.UserByID(ctx, u.ID); !errors.Is(err, latchkey.ErrNotFound) {
			t.Errorf("UserByID(user of rolled-back tx) error = %v, want ErrNotFound", err)
		}
	}

	err = s.InTx(ctx, func(tx latchkey.Store) error {
		if err := tx.CreateUser(ctx, outer); err != nil {
			return err
		}
		return tx.InTx(ctx, func(tx latchkey.Store) error {
			if err := tx.CreateUser(ctx, inner); err != nil {
				return err
			}
			return errRollback
		})
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("InTx(nested body fails) = %v, want %v", err, errRollback)
	}
	for _, u := range []*latchkey.User{outer, inner} {
		if _, err := s.UserByID(ctx, u.ID); !errors.Is(err, latchkey.ErrNotFound) {
			t.Errorf("UserByID(user of rolled-back tx) error = %v, want ErrNotFound", err)
		}
	}
}
