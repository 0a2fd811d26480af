package postgres_test

import (
	"testing"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/enginetest"
	"github.com/latchkey-dev/latchkey/internal/pgtest"
	"github.com/latchkey-dev/latchkey/store/postgres"
	"github.com/latchkey-dev/latchkey/store/storetest"
)

// TestConformance runs the store conformance suite on a fresh database per
// subtest.
func TestConformance(t *testing.T) {
	pgtest.Require(t)
	storetest.Run(t, func(t *testing.T) latchkey.Store { return pgtest.Open(t) })
}

// TestEngine runs the engine's rotation, concurrency and authentication
// suite on a fresh database per subtest.
func TestEngine(t *testing.T) {
	pgtest.Require(t)
	enginetest.Run(t, func(tb testing.TB) latchkey.Store { return pgtest.Open(tb) })
}

// TestConcurrentRefresh presents one refresh token 64 times at once through
// the engine, over a pool of 16 connections, and then over two pools as two
// server processes would: the rotations really run on different connections
// and queue on the session's row lock. The session advances exactly one
// generation and every caller gets the same new token.
func TestConcurrentRefresh(t *testing.T) {
	pgtest.Require(t)
	t.Run("OnePool", func(t *testing.T) {
		st := pgtest.OpenWith(t, postgres.Options{MaxConns: 16})
		env := enginetest.NewEnv(t, func(testing.TB) latchkey.Store { return st }, nil)
		enginetest.RefreshAtOnce(t, env, enginetest.Instance{Engine: env.Engine, Spy: env.Spy})
		got := st.Pool().Stat().TotalConns()
		t.Logf("the pool opened %d connections", got)
		if got < 2 {
			t.Errorf("the pool opened %d connections, want the rotations spread over several", got)
		}
	})
	t.Run("TwoPools", func(t *testing.T) {
		url := pgtest.URL(t)
		var stores [2]*postgres.Store
		for i := range stores {
			s, err := postgres.Open(t.Context(), url, postgres.Options{MaxConns: 8})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			stores[i] = s
		}
		env := enginetest.NewEnv(t, func(testing.TB) latchkey.Store { return stores[0] }, nil)
		// A second engine with the same configuration (master key included)
		// on its own pool: another instance behind the load balancer.
		spy := enginetest.NewSpy(stores[1])
		other, err := latchkey.New(t.Context(), spy, env.Config)
		if err != nil {
			t.Fatal(err)
		}
		enginetest.RefreshAtOnce(t, env, enginetest.Instance{Engine: env.Engine, Spy: env.Spy},
			enginetest.Instance{Engine: other, Spy: spy})
	})
}
