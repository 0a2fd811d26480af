package verifier

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bounds on how long a fetched JWKS is used before it is refreshed. The
// server's max-age is honoured within them: the floor stops a max-age of 0
// from turning every request into a fetch, the ceiling bounds how long a key
// the server has withdrawn ("latchkey keys revoke") stays trusted here.
const (
	minKeyCacheAge     = 30 * time.Second
	maxKeyCacheAge     = time.Hour
	defaultKeyCacheAge = 5 * time.Minute
)

// maxResponseBytes bounds a JWKS or feed response, so that a misbehaving
// server cannot make the verifier buffer without limit.
const maxResponseBytes = 1 << 20

// keyCache holds the JWKS's Ed25519 signing keys by kid and decides when to
// fetch them again. At most one fetch runs at a time; callers that need its
// result wait for it, the others keep using the keys held.
type keyCache struct {
	url    string
	client *http.Client
	minGap time.Duration
	now    func() time.Time
	log    *slog.Logger

	mu          sync.Mutex
	keys        map[string]ed25519.PublicKey // nil until a fetch succeeds
	freshUntil  time.Time
	lastAttempt time.Time
	lastErr     error         // of the last fetch; nil if it succeeded
	inflight    chan struct{} // closed when the running fetch ends; nil if none
}

// key returns the key kid names. A stale cache is refreshed first; an
// unknown kid causes a refetch unless one happened less than minGap ago.
func (c *keyCache) key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	for waited := false; ; waited = true {
		c.mu.Lock()
		now := c.now()
		k, found := c.keys[kid]
		stale := c.keys == nil || !now.Before(c.freshUntil)
		switch {
		case found && (!stale || c.inflight != nil || waited || !c.mayFetch(now)):
			// Fresh, or stale but being refreshed, just refreshed or not to
			// be refetched yet: a key the server published is still good.
			c.mu.Unlock()
			return k, nil
		case !waited && c.inflight != nil:
			done := c.inflight
			c.mu.Unlock()
			if err := wait(ctx, done); err != nil {
				return nil, err
			}
		case !waited && c.mayFetch(now):
			done := c.begin(now)
			c.mu.Unlock()
			c.fetch(ctx, done)
		default:
			haveKeys, lastErr := c.keys != nil, c.lastErr
			c.mu.Unlock()
			if !haveKeys || lastErr != nil {
				// The kid may be a new key the failed fetch would have
				// brought: answer "try again", not "invalid token", so that
				// clients are not signed out by an outage.
				return nil, fmt.Errorf("%w: signing keys unavailable", ErrUnavailable)
			}
			return nil, fmt.Errorf("%w: unknown key id", ErrInvalidToken)
		}
	}
}

// mayFetch applies the rate limit; c.mu is held. Before any key is held the
// gap is at most a second, so that a server that was down at start-up is
// used as soon as it answers.
func (c *keyCache) mayFetch(now time.Time) bool {
	gap := c.minGap
	if c.keys == nil {
		gap = min(gap, time.Second)
	}
	// A clock that moved back must not stall fetching until it catches up.
	return c.lastAttempt.IsZero() || now.Sub(c.lastAttempt) >= gap || now.Before(c.lastAttempt)
}

// begin marks a fetch as running; c.mu is held.
func (c *keyCache) begin(now time.Time) chan struct{} {
	c.inflight = make(chan struct{})
	c.lastAttempt = now
	return c.inflight
}

// fetch downloads the JWKS and installs it, or keeps the keys held and logs
// the failure, then releases the callers waiting on done.
func (c *keyCache) fetch(ctx context.Context, done chan struct{}) {
	keys, age, err := c.download(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.lastErr = err
		c.log.WarnContext(ctx, "verifier: JWKS fetch failed; keeping the keys held", "url", c.url,
			"keys_held", len(c.keys), "err", err)
	} else {
		c.keys, c.lastErr = keys, nil
		c.freshUntil = c.now().Add(age)
		c.log.DebugContext(ctx, "verifier: JWKS fetched", "url", c.url, "keys", len(keys), "max_age", age.String())
	}
	close(done)
	c.inflight = nil
}

// refresh fetches now (or joins the fetch already running) and returns its
// error.
func (c *keyCache) refresh(ctx context.Context) error {
	c.mu.Lock()
	if done := c.inflight; done != nil {
		c.mu.Unlock()
		if err := wait(ctx, done); err != nil {
			return err
		}
	} else {
		done := c.begin(c.now())
		c.mu.Unlock()
		c.fetch(ctx, done)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastErr != nil {
		return fmt.Errorf("verifier: fetch JWKS: %w", c.lastErr)
	}
	return nil
}

func wait(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
}

// download GETs the JWKS. The request is detached from the caller's
// cancellation (but bounded by fetchTimeout): the result serves every
// waiting caller, and a client hanging up must not spend the rate limit.
func (c *keyCache) download(ctx context.Context) (map[string]ed25519.PublicKey, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	body, h, err := get(c.client, req)
	if err != nil {
		return nil, 0, err
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, 0, err
	}
	return keys, cacheAge(h), nil
}

// get performs req and returns the body of a 200 response, at most
// maxResponseBytes of it.
func get(client *http.Client, req *http.Request) ([]byte, http.Header, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET %s: %s", req.URL.Redacted(), resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, nil, err
	}
	if len(body) > maxResponseBytes {
		return nil, nil, fmt.Errorf("GET %s: response larger than %d bytes", req.URL.Redacted(), maxResponseBytes)
	}
	return body, resp.Header, nil
}

// jwk is the part of a JWK (RFC 7517 §4, RFC 8037 §2) an Ed25519 signing
// key needs.
type jwk struct {
	KeyType   string `json:"kty"`
	Curve     string `json:"crv"`
	X         string `json:"x"`
	KeyID     string `json:"kid"`
	Use       string `json:"use"`
	Algorithm string `json:"alg"`
}

// parseJWKS keeps the Ed25519 keys meant for signatures and ignores the
// rest (other key types, encryption keys, entries it cannot read). A kid
// that appears twice is ambiguous and dropped. A set with no usable key is
// an error, so that a broken response does not replace good keys.
func parseJWKS(body []byte) (map[string]ed25519.PublicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	keys := map[string]ed25519.PublicKey{}
	dup := map[string]bool{}
	for _, raw := range set.Keys {
		var k jwk
		if json.Unmarshal(raw, &k) != nil || k.KeyType != "OKP" || k.Curve != "Ed25519" || k.Use != "sig" ||
			(k.Algorithm != "" && k.Algorithm != "EdDSA") || k.KeyID == "" {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			continue
		}
		if _, seen := keys[k.KeyID]; seen || dup[k.KeyID] {
			delete(keys, k.KeyID)
			dup[k.KeyID] = true
			continue
		}
		keys[k.KeyID] = ed25519.PublicKey(x)
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS: no usable Ed25519 signing key")
	}
	return keys, nil
}

// cacheAge reads max-age from Cache-Control (RFC 9111 §5.2.2.1) and bounds
// it; no-store and no-cache mean the shortest lifetime allowed.
func cacheAge(h http.Header) time.Duration {
	age := defaultKeyCacheAge
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return minKeyCacheAge
			case "max-age":
				if n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64); err == nil && n >= 0 {
					age = time.Duration(min(n, int64(maxKeyCacheAge/time.Second))) * time.Second
				}
			}
		}
	}
	return min(max(age, minKeyCacheAge), maxKeyCacheAge)
}
