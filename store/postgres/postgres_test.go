package postgres_test

import (
	"sync"
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
		refreshAtOnce(t, env, instance{env.Engine, env.Spy})
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
		refreshAtOnce(t, env, instance{env.Engine, env.Spy}, instance{other, spy})
	})
}

// instance is one engine and the spied store it talks to.
type instance struct {
	engine *latchkey.Engine
	spy    *enginetest.Spy
}

// refreshAtOnce signs a user in on env and has 64 callers, spread over the
// instances, refresh the sign-in's token at once. As in enginetest's
// ConcurrentRefreshConverges, a gate holds every rotation until all 64 have
// reached it, so that they overlap even on two cores.
func refreshAtOnce(t *testing.T, env *enginetest.Env, instances ...instance) {
	const n = 64
	g := env.Login(env.User("tabs@example.com"), latchkey.ModeCookie, enginetest.Browser)

	var arrived sync.WaitGroup
	arrived.Add(n)
	var mu sync.Mutex
	gated := 0
	gate := func() {
		mu.Lock()
		gated++
		first := gated <= n
		mu.Unlock()
		if first {
			arrived.Done()
			arrived.Wait()
		}
	}
	for _, in := range instances {
		in.spy.BeforeRotate(gate)
	}
	tokens := make([]latchkey.Token, n)
	errs := make([]error, n)
	var done sync.WaitGroup
	for i := range n {
		done.Add(1)
		e := instances[i%len(instances)].engine
		go func() {
			defer done.Done()
			r, err := e.Refresh(env.Ctx, string(g.RefreshToken), latchkey.ModeCookie, enginetest.Browser)
			errs[i] = err
			if err == nil {
				tokens[i] = r.RefreshToken
			}
		}()
	}
	done.Wait()
	for _, in := range instances {
		in.spy.BeforeRotate(nil)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if tokens[i] != tokens[0] {
			t.Fatalf("caller %d got a different token than caller 0", i)
		}
	}
	if tokens[0] == g.RefreshToken {
		t.Fatal("the session did not rotate")
	}
	if got := env.Session(g.SessionID).Generation; got != 1 {
		t.Fatalf("generation = %d, want 1", got)
	}
	if got := len(env.Events(g.SessionID, latchkey.EventGraceAnswer)); got != n-1 {
		t.Fatalf("grace answers = %d, want %d", got, n-1)
	}
	// The converged token is the live one.
	env.Refresh(tokens[0], enginetest.Browser)
	if got := env.Session(g.SessionID).Generation; got != 2 {
		t.Fatalf("generation after refreshing the converged token = %d, want 2", got)
	}
}
