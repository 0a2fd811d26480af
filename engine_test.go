package latchkey_test

import (
	"path/filepath"
	"testing"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/enginetest"
	"github.com/latchkey-dev/latchkey/latchkeytest"
	"github.com/latchkey-dev/latchkey/store/sqlite"
)

func openSQLite(t testing.TB) latchkey.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latchkey.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestEngineOnSQLite(t *testing.T) {
	enginetest.Run(t, openSQLite)
}

// TestManyRotationsOneRow checks that a session is one row however often it
// rotates: 10,000 rotations, counted with raw SQL.
func TestManyRotationsOneRow(t *testing.T) {
	t.Parallel()
	e := latchkeytest.NewEngine(t)
	_, tok := latchkeytest.NewRefreshToken(t, e, latchkeytest.NewUser(t, e), latchkeytest.Mobile())
	for range 10_000 {
		g, err := e.Refresh(t.Context(), tok, latchkey.ModeMobile, latchkey.Device{})
		if err != nil {
			t.Fatal(err)
		}
		tok = string(g.RefreshToken)
	}
	var rows, gen int
	if err := e.Store.DB().QueryRow(`SELECT count(*), max(generation) FROM sessions`).Scan(&rows, &gen); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || gen != 10_000 {
		t.Fatalf("sessions table: %d rows at generation %d, want 1 row at 10000", rows, gen)
	}
}
