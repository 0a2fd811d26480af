package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/store/sqlite"
	"github.com/latchkey-dev/latchkey/store/storetest"
)

// TestConformance runs the store conformance suite on a fresh database file
// per subtest.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) latchkey.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "test.db"), sqlite.Options{})
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	})
}

// TestFileMode checks that a new database and its WAL files are readable by
// their owner only: they hold password hashes and sealed keys.
func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mode.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.ListUsers(t.Context(), latchkey.UserQuery{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode&0o077 != 0 {
			t.Errorf("%s has mode %v, want no group or other access", filepath.Base(p), mode)
		}
	}
}

// TestConcurrentOpenMigratesOnce opens one new file from three stores at
// once, as three processes starting together would: all succeed and the
// schema is applied once.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "race.db")
	const n = 3
	var start, done sync.WaitGroup
	start.Add(1)
	errs := make([]error, n)
	stores := make([]*sqlite.Store, n)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			stores[i], errs[i] = sqlite.Open(context.Background(), path, sqlite.Options{})
		}()
	}
	start.Done()
	done.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	var applied int
	if err := stores[0].DB().QueryRow(`SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	cur, latest, err := stores[0].MigrationStatus(t.Context())
	if err != nil || cur != latest || applied != int(latest) {
		t.Fatalf("schema version %d of %d with %d rows applied (%v); want each migration once", cur, latest, applied, err)
	}
}
