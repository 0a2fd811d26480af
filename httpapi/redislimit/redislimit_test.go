package redislimit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latchkey-dev/latchkey/httpapi"
	"github.com/latchkey-dev/latchkey/httpapi/redislimit"
)

// open connects to LATCHKEY_TEST_REDIS_URL, skipping without it and failing
// if it is set but unreachable. Each test gets its own key prefix; n
// limiters share it, each on its own connection, like n instances.
func open(t *testing.T, n int) []*redislimit.Limiter {
	t.Helper()
	url := os.Getenv("LATCHKEY_TEST_REDIS_URL")
	if url == "" {
		t.Skip("LATCHKEY_TEST_REDIS_URL not set; skipping Redis tests")
	}
	b := make([]byte, 8)
	rand.Read(b)
	prefix := "latchkey-test:" + hex.EncodeToString(b) + ":"
	var out []*redislimit.Limiter
	for range n {
		_, c, err := redislimit.Open(t.Context(), url)
		if err != nil {
			t.Fatalf("Redis at LATCHKEY_TEST_REDIS_URL: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		out = append(out, redislimit.New(c, prefix))
	}
	return out
}

// TestBurstThenRefused: a burst of 5 is allowed, the sixth refused with a
// wait of about one interval, and other keys are independent.
func TestBurstThenRefused(t *testing.T) {
	l := open(t, 1)[0]
	r := httpapi.Rate{PerMinute: 6, Burst: 5} // one every 10 s
	for i := range 5 {
		ok, _, err := l.Allow(t.Context(), "k", r)
		if err != nil || !ok {
			t.Fatalf("request %d: ok=%v err=%v, want allowed", i, ok, err)
		}
	}
	ok, wait, err := l.Allow(t.Context(), "k", r)
	if err != nil || ok {
		t.Fatalf("sixth request: ok=%v err=%v, want refused", ok, err)
	}
	if wait <= 0 || wait.Seconds() > 10.5 {
		t.Fatalf("retry after %v, want up to 10s", wait)
	}
	if ok, _, _ := l.Allow(t.Context(), "other", r); !ok {
		t.Fatal("another key was limited")
	}
}

// TestSharedAcrossInstances: two limiters on separate connections (two
// instances) share one budget, even when 40 requests ask at once.
func TestSharedAcrossInstances(t *testing.T) {
	ls := open(t, 2)
	r := httpapi.Rate{PerMinute: 1, Burst: 10}
	var allowed atomic.Int64
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range 40 {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			if ok, _, err := ls[i%2].Allow(context.Background(), "shared", r); err == nil && ok {
				allowed.Add(1)
			}
		}()
	}
	start.Done()
	done.Wait()
	if got := allowed.Load(); got != 10 {
		t.Fatalf("%d of 40 concurrent requests allowed, want the burst of 10", got)
	}
}
