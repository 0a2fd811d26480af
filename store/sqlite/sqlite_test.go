package sqlite_test

import (
	"path/filepath"
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
