package postgres_test

import (
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/pgtest"
	"github.com/latchkey-dev/latchkey/store/postgres"
)

// TestInTxRetriesDeadlock makes two transactions lock two users in opposite
// orders. PostgreSQL aborts one of them with a deadlock (40P01) after
// deadlock_timeout (1 s by default); InTx runs that one's body again and
// both commit.
func TestInTxRetriesDeadlock(t *testing.T) {
	ctx := t.Context()
	s := pgtest.Open(t)
	var users [2]*latchkey.User
	for i := range users {
		id := uuid.Must(uuid.NewV7())
		users[i] = &latchkey.User{ID: id, Email: id.String() + "@example.com", Role: latchkey.RoleUser,
			PasswordHash: "x", IsActive: true}
		if err := s.CreateUser(ctx, users[i]); err != nil {
			t.Fatal(err)
		}
	}
	// Both bodies hold their first lock before either asks for its second;
	// a retried body does not wait again.
	var bothLocked sync.WaitGroup
	bothLocked.Add(2)
	var calls atomic.Int32
	body := func(first, second uuid.UUID) func(latchkey.Store) error {
		attempt := 0
		return func(tx latchkey.Store) error {
			calls.Add(1)
			attempt++
			if _, err := tx.UpdateUser(ctx, first, latchkey.UserPatch{BumpTokenVersion: true}, users[0].CreatedAt); err != nil {
				return err
			}
			if attempt == 1 {
				bothLocked.Done()
				bothLocked.Wait()
			}
			_, err := tx.UpdateUser(ctx, second, latchkey.UserPatch{BumpTokenVersion: true}, users[0].CreatedAt)
			return err
		}
	}
	var done sync.WaitGroup
	errs := make([]error, 2)
	for i, b := range []func(latchkey.Store) error{body(users[0].ID, users[1].ID), body(users[1].ID, users[0].ID)} {
		done.Add(1)
		go func() {
			defer done.Done()
			errs[i] = s.InTx(ctx, b)
		}()
	}
	done.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("InTx %d: %v, want the deadlock retried", i, err)
		}
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("transaction bodies ran %d times, want 3 (one retried)", got)
	}
	for _, u := range users {
		got, err := s.UserByID(ctx, u.ID)
		if err != nil || got.TokenVersion != 2 {
			t.Errorf("user token version = %v, %v; want 2 (both transactions committed once)", got, err)
		}
	}
}

// TestSynchronousCommit checks that the pool's connections commit durably
// whatever the server's default, and that a URL may still choose.
func TestSynchronousCommit(t *testing.T) {
	dbURL := pgtest.URL(t)
	for _, c := range []struct{ url, want string }{
		{dbURL, "on"},
		{withParam(t, dbURL, "synchronous_commit", "remote_apply"), "remote_apply"},
	} {
		s, err := postgres.Open(t.Context(), c.url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = s.Pool().QueryRow(t.Context(), `SHOW synchronous_commit`).Scan(&got)
		s.Close()
		if err != nil || got != c.want {
			t.Errorf("synchronous_commit = %q, %v; want %q", got, err, c.want)
		}
	}
}

// withParam adds a run-time parameter to a connection string in either form.
func withParam(t *testing.T, conn, key, value string) string {
	t.Helper()
	if !strings.Contains(conn, "://") {
		return conn + " " + key + "=" + value
	}
	u, err := url.Parse(conn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}
