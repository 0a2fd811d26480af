package httpapi

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a token bucket: Burst requests at once, refilled at PerMinute.
type Rate struct {
	PerMinute float64
	Burst     int
}

// Limits are the API's rate limits. Sign-in is limited per client IP and per
// (account, IP) pair: guesses at an account from elsewhere slow the guesser
// down without locking the owner out (argon2id's cost and the per-IP limit
// are what slow a guesser spread over many addresses). Registration is
// limited per IP and per email address, refresh per IP and per session.
type Limits struct {
	LoginPerIP      Rate
	LoginPerAccount Rate
	RegisterPerIP   Rate
	// RegisterPerAccount limits attempts to register one email address,
	// from anywhere.
	RegisterPerAccount Rate
	RefreshPerIP       Rate
	RefreshPerSession  Rate
}

// DefaultLimits are generous for people and tight for scripts.
var DefaultLimits = Limits{
	LoginPerIP:         Rate{PerMinute: 60, Burst: 30},
	LoginPerAccount:    Rate{PerMinute: 10, Burst: 10},
	RegisterPerIP:      Rate{PerMinute: 20, Burst: 10},
	RegisterPerAccount: Rate{PerMinute: 5, Burst: 5},
	RefreshPerIP:       Rate{PerMinute: 600, Burst: 120},
	RefreshPerSession:  Rate{PerMinute: 60, Burst: 64},
}

func (l Limits) withDefaults() Limits {
	pick := func(r *Rate, d Rate) {
		if r.PerMinute <= 0 || r.Burst <= 0 {
			*r = d
		}
	}
	pick(&l.LoginPerIP, DefaultLimits.LoginPerIP)
	pick(&l.LoginPerAccount, DefaultLimits.LoginPerAccount)
	pick(&l.RegisterPerIP, DefaultLimits.RegisterPerIP)
	pick(&l.RegisterPerAccount, DefaultLimits.RegisterPerAccount)
	pick(&l.RefreshPerIP, DefaultLimits.RefreshPerIP)
	pick(&l.RefreshPerSession, DefaultLimits.RefreshPerSession)
	return l
}

// Limiter decides whether one more request under key fits rate. It returns
// how long to wait when it does not. Implementations must be safe for
// concurrent use; a shared one (Redis) makes N instances enforce one limit.
type Limiter interface {
	Allow(ctx context.Context, key string, r Rate) (ok bool, retryAfter time.Duration, err error)
}

// MemoryLimiter is an in-process Limiter of token buckets.
type MemoryLimiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

// maxBuckets bounds a MemoryLimiter's memory (about 200 bytes a bucket).
const maxBuckets = 1 << 20

// NewMemoryLimiter returns an empty in-process limiter.
func NewMemoryLimiter() *MemoryLimiter { return &MemoryLimiter{buckets: map[string]*bucket{}} }

// Allow implements Limiter.
func (m *MemoryLimiter) Allow(_ context.Context, key string, r Rate) (bool, time.Duration, error) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	// Forget idle buckets now and then so that the map cannot grow without
	// bound under a spray of keys; a full bucket is the same as no bucket.
	if now.Sub(m.sweep) > time.Minute {
		for k, b := range m.buckets {
			if now.Sub(b.seen) > 10*time.Minute {
				delete(m.buckets, k)
			}
		}
		m.sweep = now
	}
	b, ok := m.buckets[key]
	if !ok && len(m.buckets) >= maxBuckets {
		// A spray of keys (addresses, accounts) must not grow memory without
		// bound: drop the buckets idle for a minute, which are nearly full
		// again anyway.
		for k, b := range m.buckets {
			if now.Sub(b.seen) > time.Minute {
				delete(m.buckets, k)
			}
		}
		m.sweep = now
		if len(m.buckets) >= maxBuckets {
			return false, time.Second, nil
		}
	}
	if !ok {
		b = &bucket{l: rate.NewLimiter(rate.Limit(r.PerMinute/60), r.Burst)}
		m.buckets[key] = b
	}
	b.seen = now
	res := b.l.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d, nil
	}
	return true, 0, nil
}

// limit checks each key against its rate and returns a 429 error for the
// first that is exhausted. If the limiter fails, the in-process fallback
// decides, so that a broken Redis neither takes sign-in down nor lifts the
// limits.
func (s *Server) limit(ctx context.Context, checks ...limitCheck) error {
	for _, c := range checks {
		ok, wait, err := s.limiter.Allow(ctx, c.key, c.rate)
		if err != nil {
			// A shared limiter (Redis) that fails must not switch the
			// limits off: count in this process instead until it is back.
			s.log.WarnContext(ctx, "rate limiter unavailable; limiting in process", "err", err)
			s.metrics.rateLimiterErrors.Inc()
			ok, wait, _ = s.fallback.Allow(ctx, c.key, c.rate)
		}
		if !ok {
			s.metrics.rateLimited.WithLabelValues(c.name).Inc()
			return &apiError{status: 429, code: "rate_limited", detail: "Too many requests; retry later",
				retryAfter: int(math.Ceil(wait.Seconds()))}
		}
	}
	return nil
}

type limitCheck struct {
	name string
	key  string
	rate Rate
}

func check(name string, r Rate, parts ...any) limitCheck {
	key := name
	for _, p := range parts {
		key += "|" + fmt.Sprint(p)
	}
	return limitCheck{name: name, key: key, rate: r}
}
