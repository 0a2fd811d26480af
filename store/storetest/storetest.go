// Package storetest is the conformance suite of latchkey.Store: the
// specification every backend runs unchanged, in the manner of
// testing/slogtest and dex's storage/conformance.
//
// A backend's test is a few lines:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) latchkey.Store {
//			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "test.db"), sqlite.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite uses only the Store interface and assumes nothing about the
// database behind it. Every subtest gets a fresh, empty store.
package storetest

import (
	"testing"

	"github.com/latchkey-dev/latchkey"
)

// test is one named subtest; it receives a fresh store.
type test struct {
	name string
	fn   func(t *testing.T, s latchkey.Store)
}

// group is a named list of subtests, one per method or concern.
type group struct {
	name  string
	tests []test
}

// Run runs the conformance suite against the stores that open returns. open
// is called once per subtest with that subtest's t and must return a fresh,
// empty, migrated store; it is responsible for closing it (t.Cleanup).
//
// The suite covers every method of latchkey.Store as its doc comment states
// it, including the errors each returns, and then, in the subtest
// "Concurrency", the conditional writes under contention.
func Run(t *testing.T, open func(t *testing.T) latchkey.Store) {
	groups := []group{
		{"Users", userTests},
		{"Sessions", sessionTests},
		{"RotateSession", rotateTests()},
		{"RecordGraceAnswer", graceTests()},
		{"Revoke", revokeTests},
		{"AuthState", authStateTests},
		{"Events", eventTests},
		{"Keys", keyTests},
		{"Admin", adminTests},
		{"Cleanup", cleanupTests},
		{"InTx", txTests},
		{"Ping", []test{{"Reachable", testPing}}},
		{"Concurrency", concurrencyTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.fn(t, open(t))
				})
			}
		})
	}
}

func testPing(t *testing.T, s latchkey.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v, want nil", err)
	}
}
