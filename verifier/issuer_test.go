package verifier_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey/latchkeytest"
	"github.com/latchkey-dev/latchkey/verifier"
)

// issuer is a stand-in token issuer with a key the test holds, for the
// cases a real Latchkey server never produces: odd claims and headers,
// JWKS responses of every kind.
type issuer struct {
	priv    ed25519.PrivateKey
	kid     string
	clock   *latchkeytest.Clock
	fetches atomic.Int64
	srv     *httptest.Server

	mu           sync.Mutex
	body         []byte
	status       int
	cacheControl string
}

const (
	testIssuer   = "https://issuer.test"
	testAudience = "orders-api"
)

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	is := &issuer{priv: newKey(t), kid: "k1", clock: &latchkeytest.Clock{}, status: http.StatusOK,
		cacheControl: "public, max-age=300"}
	is.clock.Set(latchkeytest.Start)
	is.setKeys(jwkOf(is.priv, is.kid))
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if is.cacheControl != "" {
			w.Header().Set("Cache-Control", is.cacheControl)
		}
		w.WriteHeader(is.status)
		w.Write(is.body)
	}))
	t.Cleanup(is.srv.Close)
	return is
}

// jwkOf is the public JWK Latchkey would publish for priv.
func jwkOf(priv ed25519.PrivateKey, kid string) map[string]any {
	return map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(priv.Public().(ed25519.PublicKey)),
		"kid": kid, "use": "sig", "alg": "EdDSA"}
}

func (is *issuer) setKeys(keys ...map[string]any) {
	is.setBody([]byte(`{"keys":[` + strings.Join(func() []string {
		var s []string
		for _, k := range keys {
			s = append(s, mustJSON(k))
		}
		return s
	}(), ",") + `]}`))
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func (is *issuer) setBody(b []byte) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.body = b
}

func (is *issuer) set(status int, cacheControl string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.status, is.cacheControl = status, cacheControl
}

func (is *issuer) options() verifier.Options {
	return verifier.Options{Issuer: testIssuer, Audience: testAudience, Now: is.clock.Now, HTTPClient: is.srv.Client()}
}

func (is *issuer) verifier(t *testing.T) *verifier.Verifier {
	t.Helper()
	v, err := verifier.New(is.srv.URL+"/jwks.json", is.options())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (is *issuer) header() map[string]any {
	return map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": is.kid}
}

// claims are a valid access token's, issued now.
func (is *issuer) claims() map[string]any {
	now := is.clock.Now().Unix()
	return map[string]any{"iss": testIssuer, "aud": testAudience, "client_id": "web", "sub": uuid.NewString(),
		"sid": uuid.NewString(), "jti": "jti-1", "iat": now, "exp": now + 900, "token_version": 3, "role": "user"}
}

func (is *issuer) token(header, claims map[string]any) string {
	return edSigned(is.priv, header, claims)
}

func TestClaimAndHeaderChecks(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t)
	h, c := is.header(), is.claims()
	now := is.clock.Now().Unix()
	attacker := newKey(t)
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"valid", is.token(h, c), nil},
		{"typ application/at+jwt", is.token(with(h, "typ", "application/at+jwt"), c), nil},
		{"typ in capitals", is.token(with(h, "typ", "AT+JWT"), c), nil},
		{"typ JWT", is.token(with(h, "typ", "JWT"), c), verifier.ErrInvalidToken},
		{"no typ", is.token(with(h, "typ", nil), c), verifier.ErrInvalidToken},
		{"no kid", is.token(with(h, "kid", nil), c), verifier.ErrInvalidToken},
		{"crit header", is.token(with(h, "crit", []string{"exp"}), c), verifier.ErrInvalidToken},
		{"embedded jwk of the signer", edSigned(attacker, with(h, "jwk", jwkOf(attacker, is.kid)), c), verifier.ErrInvalidToken},
		{"jku to the signer's keys", edSigned(attacker, with(h, "jku", "https://attacker.example/jwks.json"), c), verifier.ErrInvalidToken},
		{"no exp", is.token(h, with(c, "exp", nil)), verifier.ErrInvalidToken},
		{"no iat", is.token(h, with(c, "iat", nil)), verifier.ErrInvalidToken},
		{"no jti", is.token(h, with(c, "jti", nil)), verifier.ErrInvalidToken},
		{"sub not a uuid", is.token(h, with(c, "sub", "alice")), verifier.ErrInvalidToken},
		{"no sid", is.token(h, with(c, "sid", nil)), verifier.ErrInvalidToken},
		{"no role", is.token(h, with(c, "role", nil)), verifier.ErrInvalidToken},
		{"other issuer", is.token(h, with(c, "iss", "https://evil.test")), verifier.ErrInvalidToken},
		{"no issuer", is.token(h, with(c, "iss", nil)), verifier.ErrInvalidToken},
		{"other audience", is.token(h, with(c, "aud", "billing")), verifier.ErrInvalidToken},
		{"audience differing in case", is.token(h, with(c, "aud", strings.ToUpper(testAudience))), verifier.ErrInvalidToken},
		{"no audience", is.token(h, with(c, "aud", nil)), verifier.ErrInvalidToken},
		{"audience list with ours", is.token(h, with(c, "aud", []string{"billing", testAudience})), nil},
		{"iat inside the leeway", is.token(h, with(c, "iat", now+4)), nil},
		{"iat in the future", is.token(h, with(c, "iat", now+10)), verifier.ErrInvalidToken},
		{"nbf in the future", is.token(h, with(c, "nbf", now+10)), verifier.ErrInvalidToken},
		{"exp inside the leeway", is.token(h, with(with(c, "iat", now-900), "exp", now-4)), nil},
		{"exp past the leeway", is.token(h, with(with(c, "iat", now-900), "exp", now-6)), verifier.ErrExpiredToken},
		{"lifetime over MaxTokenLifetime", is.token(h, with(c, "exp", now+2*3600)), verifier.ErrInvalidToken},
		{"exp as a string", is.token(h, with(c, "exp", "tomorrow")), verifier.ErrInvalidToken},
		{"two signatures' worth of dots", is.token(h, c) + ".x", verifier.ErrInvalidToken},
		{"JSON serialization", `{"payload":"e30","signatures":[]}`, verifier.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(t.Context(), tt.token)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err == nil && (c.Role != "user" || c.ClientID != "web" || c.TokenVersion != 3 || c.KeyID != is.kid || c.ID != "jti-1") {
				t.Errorf("claims = %+v", c)
			}
		})
	}
	if got := is.fetches.Load(); got != 1 {
		t.Errorf("JWKS fetched %d times, want 1: no header may point the verifier elsewhere", got)
	}
}

func TestOnlyEd25519SigningKeysAreUsed(t *testing.T) {
	is := newIssuer(t)
	good, enc, wrongAlg, dup1, dup2, noUse := newKey(t), newKey(t), newKey(t), newKey(t), newKey(t), newKey(t)
	is.setKeys(
		jwkOf(good, "good"),
		with(jwkOf(enc, "enc"), "use", "enc"),
		with(jwkOf(wrongAlg, "es256"), "alg", "ES256"),
		with(jwkOf(noUse, "no-use"), "use", nil),
		jwkOf(dup1, "dup"), jwkOf(dup2, "dup"),
		with(jwkOf(good, "x25519"), "crv", "X25519"),
		map[string]any{"kty": "EC", "crv": "P-256", "kid": "ec", "use": "sig", "x": "AAAA", "y": "AAAA"},
		map[string]any{"kty": "oct", "kid": "oct", "k": b64.EncodeToString([]byte("shared secret")), "use": "sig"},
		map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "short", "use": "sig", "x": "AAAA"},
		map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "number", "use": "sig", "x": 42},
	)
	v := is.verifier(t)
	h, c := is.header(), is.claims()
	if _, err := v.Verify(t.Context(), edSigned(good, with(h, "kid", "good"), c)); err != nil {
		t.Fatalf("good key: %v", err)
	}
	for name, tok := range map[string]string{
		"use enc":          edSigned(enc, with(h, "kid", "enc"), c),
		"alg ES256":        edSigned(wrongAlg, with(h, "kid", "es256"), c),
		"no use":           edSigned(noUse, with(h, "kid", "no-use"), c),
		"duplicate kid 1":  edSigned(dup1, with(h, "kid", "dup"), c),
		"duplicate kid 2":  edSigned(dup2, with(h, "kid", "dup"), c),
		"X25519 curve":     edSigned(good, with(h, "kid", "x25519"), c),
		"EC key":           edSigned(good, with(h, "kid", "ec"), c),
		"oct key as HS256": hmacSigned([]byte("shared secret"), with(with(h, "kid", "oct"), "alg", "HS256"), c),
		"short x":          edSigned(good, with(h, "kid", "short"), c),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Verify(t.Context(), tok); !errors.Is(err, verifier.ErrInvalidToken) {
				t.Errorf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestJWKSCacheLifetimeFollowsMaxAge(t *testing.T) {
	tests := []struct {
		cacheControl string
		want         time.Duration
	}{
		{"public, max-age=120", 120 * time.Second},
		{"max-age=\"90\", public", 90 * time.Second},
		{"", 5 * time.Minute},
		{"max-age=0", 30 * time.Second},
		{"no-store", 30 * time.Second},
		{"no-cache, max-age=600", 30 * time.Second},
		{"max-age=86400", time.Hour},
		{"max-age=99999999999999999", time.Hour},
		{"max-age=soon", 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.cacheControl, func(t *testing.T) {
			is := newIssuer(t)
			is.set(http.StatusOK, tt.cacheControl)
			v := is.verifier(t)
			// A token that lives as long as the longest cache lifetime.
			c := is.claims()
			tok := is.token(is.header(), with(c, "exp", c["iat"].(int64)+3600))
			verify := func(wantFetches int64) {
				t.Helper()
				if _, err := v.Verify(t.Context(), tok); err != nil {
					t.Fatal(err)
				}
				if got := is.fetches.Load(); got != wantFetches {
					t.Fatalf("at +%v: JWKS fetched %d times, want %d", is.clock.Now().Sub(latchkeytest.Start), got, wantFetches)
				}
			}
			verify(1)
			is.clock.Advance(tt.want - time.Second)
			verify(1)
			is.clock.Advance(time.Second)
			verify(2)
		})
	}
}

func TestFailedRefreshKeepsKeys(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t)
	tok := is.token(is.header(), is.claims())
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	check := func(wantFetches int64) {
		t.Helper()
		if _, err := v.Verify(t.Context(), tok); err != nil {
			t.Fatalf("with the cached key: %v", err)
		}
		if got := is.fetches.Load(); got != wantFetches {
			t.Fatalf("JWKS fetched %d times, want %d", got, wantFetches)
		}
	}
	is.set(http.StatusInternalServerError, "")
	is.clock.Advance(5 * time.Minute) // stale
	check(2)                          // refresh tried, failed, cached key used
	check(2)                          // no retry before MinRefetchInterval
	// An unknown kid may be a key the failed fetch would have brought.
	other := edSigned(newKey(t), with(is.header(), "kid", "k2"), is.claims())
	if _, err := v.Verify(t.Context(), other); !errors.Is(err, verifier.ErrUnavailable) {
		t.Errorf("unknown kid while the JWKS fails: err = %v, want ErrUnavailable", err)
	}
	is.clock.Advance(verifier.DefaultMinRefetchInterval)
	check(3)
	// A 200 with nothing usable in it does not wipe the keys either.
	is.set(http.StatusOK, "max-age=300")
	is.setBody([]byte(`{"keys":[]}`))
	is.clock.Advance(verifier.DefaultMinRefetchInterval)
	check(4)
	is.setKeys(jwkOf(is.priv, is.kid))
	is.clock.Advance(verifier.DefaultMinRefetchInterval)
	check(5)
	is.clock.Advance(4 * time.Minute) // fresh again
	check(5)
}

func TestJWKSUnavailableAtFirstUse(t *testing.T) {
	is := newIssuer(t)
	is.set(http.StatusBadGateway, "")
	v := is.verifier(t)
	tok := is.token(is.header(), is.claims())
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, verifier.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	v.RequireAuth(http.NotFoundHandler()).ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"code":"verifier_unavailable"`) {
		t.Errorf("middleware: %d %s, want 503 verifier_unavailable", rec.Code, rec.Body)
	}
	// Until a key is held, retries are a second apart, not a full
	// MinRefetchInterval: the server may just have been starting.
	is.set(http.StatusOK, "")
	is.clock.Advance(time.Second)
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("once the JWKS answers: %v", err)
	}
	if got := is.fetches.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2", got)
	}
}

func TestOversizedJWKSIsRefused(t *testing.T) {
	is := newIssuer(t)
	key := mustJSON(jwkOf(is.priv, is.kid))
	is.setBody([]byte(`{"padding":"` + strings.Repeat("x", 1<<20) + `","keys":[` + key + `]}`))
	v := is.verifier(t)
	if err := v.FetchKeys(t.Context()); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("FetchKeys = %v, want a size error", err)
	}
	if _, err := v.Verify(t.Context(), is.token(is.header(), is.claims())); !errors.Is(err, verifier.ErrUnavailable) {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
}

func TestConcurrentFirstUseFetchesOnce(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(t)
	tok := is.token(is.header(), is.claims())
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range errs {
		wg.Go(func() {
			<-start
			_, errs[i] = v.Verify(t.Context(), tok)
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := is.fetches.Load(); got != 1 {
		t.Errorf("JWKS fetched %d times by 32 concurrent first requests, want 1", got)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	ok := verifier.Options{Issuer: "latchkey", Audience: "latchkey"}
	const jwks = "https://auth.example.com/.well-known/jwks.json"
	tests := []struct {
		name string
		url  string
		opts verifier.Options
		ok   bool
	}{
		{"minimal", jwks, ok, true},
		{"loopback http", "http://127.0.0.1:8080/.well-known/jwks.json", ok, true},
		{"localhost http", "http://localhost:8080/.well-known/jwks.json", ok, true},
		{"remote http", "http://auth.example.com/.well-known/jwks.json", ok, false},
		{"remote http allowed", "http://auth.internal/.well-known/jwks.json", func() verifier.Options { o := ok; o.AllowHTTP = true; return o }(), true},
		{"relative URL", "/.well-known/jwks.json", ok, false},
		{"other scheme", "file:///etc/jwks.json", ok, false},
		{"no issuer", jwks, verifier.Options{Audience: "latchkey"}, false},
		{"no audience", jwks, verifier.Options{Issuer: "latchkey"}, false},
		{"leeway too large", jwks, func() verifier.Options { o := ok; o.Leeway = 2 * time.Minute; return o }(), false},
		{"negative leeway", jwks, func() verifier.Options { o := ok; o.Leeway = -time.Second; return o }(), false},
		{"refetch interval too small", jwks, func() verifier.Options { o := ok; o.MinRefetchInterval = time.Millisecond; return o }(), false},
		{"feed without token", jwks, func() verifier.Options {
			o := ok
			o.RevocationFeedURL = "https://auth.example.com/v1/auth/revocations"
			return o
		}(), false},
		{"token without feed", jwks, func() verifier.Options { o := ok; o.RevocationFeedToken = "secret"; return o }(), false},
		{"feed over remote http", jwks, func() verifier.Options {
			o := ok
			o.RevocationFeedURL, o.RevocationFeedToken = "http://auth.example.com/v1/auth/revocations", "secret"
			return o
		}(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verifier.New(tt.url, tt.opts)
			if (err == nil) != tt.ok {
				t.Errorf("New = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestOptionsLogValueRedactsFeedToken(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	opts := verifier.Options{Issuer: "latchkey", Audience: "latchkey", RevocationFeedURL: "https://auth.example.com/v1/auth/revocations",
		RevocationFeedToken: "super-secret-value"}
	log.Info("starting", "verifier", opts)
	if strings.Contains(buf.String(), "super-secret-value") || !strings.Contains(buf.String(), "[redacted]") {
		t.Errorf("log line %s", buf.String())
	}
}
