package latchkey

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var cheap = PasswordParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}

func TestPasswordHashPHC(t *testing.T) {
	phc := hashPassword("correct horse", cheap)
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("PHC string %q", phc)
	}
	if ok, stale := checkPassword("correct horse", phc, cheap); !ok || stale {
		t.Fatalf("check = %v, stale %v; want true, false", ok, stale)
	}
	if ok, _ := checkPassword("correct horsf", phc, cheap); ok {
		t.Fatal("wrong password accepted")
	}
	if _, stale := checkPassword("correct horse", phc, DefaultPasswordParams); !stale {
		t.Fatal("hash with other parameters not reported stale")
	}
	if hashPassword("correct horse", cheap) == phc {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA", "$argon2id$v=18$m=64,t=1,p=1$c2FsdA$aGFzaA", "plain"} {
		if ok, _ := checkPassword("x", bad, cheap); ok {
			t.Fatalf("malformed hash %q accepted", bad)
		}
	}
}

func TestPasswordPolicy(t *testing.T) {
	for _, c := range []struct {
		pw   string
		weak bool
		bad  bool
	}{
		{"short1!", false, true},
		{strings.Repeat("x", 129), false, true},
		{"password", true, false},
		{"12345678", true, false},
		{"jane.doe@example.com", true, false}, // the user's own email
		{"correct horse battery staple", false, false},
	} {
		_, err := checkPasswordPolicy(c.pw, "jane.doe@example.com", "Jane Doe")
		var ve *ValidationError
		switch {
		case c.bad && !errors.As(err, &ve):
			t.Errorf("%q: got %v, want a validation error", c.pw, err)
		case c.weak && !errors.Is(err, ErrWeakPassword):
			t.Errorf("%q: got %v, want ErrWeakPassword", c.pw, err)
		case !c.bad && !c.weak && err != nil:
			t.Errorf("%q: got %v, want accepted", c.pw, err)
		}
	}
	// Four ligatures are eight characters after NFKC: refused only as
	// guessable, not as too short.
	if _, err := checkPasswordPolicy("ﬁﬁﬁﬁ"); !errors.Is(err, ErrWeakPassword) {
		t.Errorf("ligatures: got %v, want weak (8 characters after NFKC)", err)
	}
	p, _ := normalizePassword("ＡＢＣ")
	if p != "ABC" {
		t.Errorf("NFKC of full-width letters = %q", p)
	}
}

// TestHashPoolBounds fills the pool's workers and queue with blocked jobs
// and checks that the next request is refused at once and that a waiting
// request gives up when its context ends.
func TestHashPoolBounds(t *testing.T) {
	p := newHashPool(2, 1)
	release := make(chan struct{})
	var running sync.WaitGroup
	running.Add(2)
	var done sync.WaitGroup
	for range 2 {
		done.Add(1)
		go func() {
			defer done.Done()
			_ = p.do(context.Background(), func() { running.Done(); <-release })
		}()
	}
	running.Wait() // both workers busy
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan error)
	go func() { waiting <- p.do(ctx, func() { t.Error("cancelled job ran") }) }()
	// The queue slot is taken once the waiter is counted.
	for p.queueDepth() != 1 {
		runtime.Gosched()
		select {
		case err := <-waiting:
			t.Fatalf("queued job returned early: %v", err)
		default:
		}
	}
	if err := p.do(context.Background(), func() { t.Error("overloaded job ran") }); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("full pool: got %v, want ErrOverloaded", err)
	}
	cancel()
	if err := <-waiting; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: got %v", err)
	}
	close(release)
	done.Wait()
	if err := p.do(context.Background(), func() {}); err != nil {
		t.Fatalf("after release: %v", err)
	}
}
