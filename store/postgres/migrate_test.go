package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"

	"github.com/latchkey-dev/latchkey/internal/pgtest"
	"github.com/latchkey-dev/latchkey/store/postgres"
)

// TestOpenMigratesOnce starts three instances on one fresh database at the
// same moment. goose's table lock lets one of them migrate while the others
// wait and then find nothing to do: every Open succeeds and each migration
// is recorded once.
func TestOpenMigratesOnce(t *testing.T) {
	const n = 3
	url := pgtest.URL(t)
	var ready sync.WaitGroup
	ready.Add(n)
	start := make(chan struct{})
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	var done sync.WaitGroup
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			stores[i], errs[i] = postgres.Open(t.Context(), url, postgres.Options{})
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}

	s := stores[0]
	current, latest, err := s.MigrationStatus(t.Context())
	if err != nil || current != latest || latest < 2 {
		t.Fatalf("MigrationStatus = %d, %d, %v; want the latest version applied", current, latest, err)
	}
	rows, err := s.Pool().Query(t.Context(),
		`SELECT version_id, count(*) FROM goose_db_version WHERE version_id > 0 GROUP BY version_id ORDER BY version_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var versions []int64
	for rows.Next() {
		var v, count int64
		if err := rows.Scan(&v, &count); err != nil {
			t.Fatal(err)
		}
		if count != 1 {
			t.Errorf("migration %d recorded %d times, want once", v, count)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if int64(len(versions)) != latest {
		t.Errorf("applied migrations %v, want 1 to %d", versions, latest)
	}
	var locked bool
	if err := s.Pool().QueryRow(t.Context(), `SELECT bool_or(locked) FROM goose_lock`).Scan(&locked); err != nil || locked {
		t.Errorf("goose_lock held after every Open returned (locked %v, %v)", locked, err)
	}
}

// TestMigrationStatus opens a fresh database without migrating, migrates it,
// and opens it again: the second Open has nothing to do.
func TestMigrationStatus(t *testing.T) {
	ctx := t.Context()
	url := pgtest.URL(t)
	s, err := postgres.Open(ctx, url, postgres.Options{SkipMigrations: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	current, latest, err := s.MigrationStatus(ctx)
	if err != nil || current != 0 || latest < 2 {
		t.Fatalf("MigrationStatus before Migrate = %d, %d, %v; want 0, at least 2", current, latest, err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if current, _, err = s.MigrationStatus(ctx); err != nil || current != latest {
		t.Fatalf("MigrationStatus after Migrate = %d, %v; want %d", current, err, latest)
	}
	again, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatalf("Open on a migrated database: %v", err)
	}
	again.Close()
}

// TestOpenOneConnection migrates through a pool of one connection: goose
// needs two at once (one for the migrations, one for its lock), so it must
// not take them from the store's pool.
func TestOpenOneConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, pgtest.URL(t), postgres.Options{MaxConns: 1})
	if err != nil {
		t.Fatalf("Open with one connection: %v", err)
	}
	defer s.Close()
	if _, err := s.SessionByID(ctx, uuid.New()); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("SessionByID on the migrated database: %v, want ErrNotFound", err)
	}
}

// TestOpenErrors checks that a bad URL or an unreachable server fails Open
// without repeating the password. It needs no server.
func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for _, url := range []string{
		"postgres://latchkey:hunter2@127.0.0.1:1/latchkey?sslmode=disable&connect_timeout=2",
		"postgres://latchkey:hunter2@127.0.0.1:5432/latchkey?pool_max_conns=lots",
	} {
		s, err := postgres.Open(ctx, url, postgres.Options{})
		if err == nil {
			s.Close()
			t.Fatalf("Open(%s) succeeded, want an error", url)
		}
		t.Logf("Open: %v", err)
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open error repeats the password: %v", err)
		}
	}
}
