// Package redislimit is an httpapi.Limiter on Redis, so that any number of
// Latchkey instances enforce one limit per key (DESIGN.md, "CLI":
// --redis-url). Each check is one atomic Lua script implementing GCRA (the
// generic cell rate algorithm, a token bucket kept as one timestamp per
// key) against Redis's own clock, so instances with slightly different
// clocks still agree.
package redislimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkey-dev/latchkey/httpapi"
)

// gcra keeps, per key, the theoretical arrival time (TAT) of the next
// request in microseconds of Redis's clock. A request is allowed when TAT -
// (burst-1)·interval <= now; it then moves TAT one interval on. The key
// expires when the bucket would be full again, so idle keys cost nothing.
var gcra = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - (burst - 1) * interval
if allow_at > now then
  return {0, allow_at - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
`)

// Limiter is an httpapi.Limiter backed by Redis.
type Limiter struct {
	client redis.UniversalClient
	prefix string
}

var _ httpapi.Limiter = (*Limiter)(nil)

// New returns a limiter on client. Keys are stored under prefix (default
// "latchkey:rl:").
func New(client redis.UniversalClient, prefix string) *Limiter {
	if prefix == "" {
		prefix = "latchkey:rl:"
	}
	return &Limiter{client: client, prefix: prefix}
}

// Open connects to the Redis at url (redis://, rediss:// or unix://) and
// checks that it answers.
func Open(ctx context.Context, url string) (*Limiter, redis.UniversalClient, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, nil, fmt.Errorf("redislimit: %w", err)
	}
	c := redis.NewClient(opts)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("redislimit: ping %s: %w", opts.Addr, err)
	}
	return New(c, ""), c, nil
}

// Allow implements httpapi.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string, r httpapi.Rate) (bool, time.Duration, error) {
	if r.PerMinute <= 0 || r.Burst <= 0 {
		return true, 0, nil
	}
	interval := int64(60e6 / r.PerMinute) // microseconds between requests
	res, err := gcra.Run(ctx, l.client, []string{l.prefix + key}, interval, r.Burst).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("redislimit: %w", err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("redislimit: unexpected reply %v", res)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}
