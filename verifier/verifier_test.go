package verifier_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/httpapi"
	"github.com/latchkey-dev/latchkey/latchkeytest"
	"github.com/latchkey-dev/latchkey/verifier"
)

// feedSecret is the Latchkey server's introspection secret, which resource
// servers present to read the revocation feed.
const feedSecret = "resource-server-secret-0123456789"

// env is a running Latchkey server and the HTTP client verifiers use to
// reach it, which counts JWKS and feed requests.
type env struct {
	srv         *latchkeytest.Server
	client      *http.Client
	jwksFetches atomic.Int64
	feedPolls   atomic.Int64
	// feedDown, when set, makes the feed answer 503 without reaching the
	// server.
	feedDown atomic.Bool
}

// countingTransport counts and, on request, fails requests on their way
// to the Latchkey server.
type countingTransport struct {
	base http.RoundTripper
	e    *env
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	switch r.URL.Path {
	case "/.well-known/jwks.json":
		c.e.jwksFetches.Add(1)
	case "/v1/auth/revocations":
		c.e.feedPolls.Add(1)
		if c.e.feedDown.Load() {
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable",
				Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: r}, nil
		}
	}
	return c.base.RoundTrip(r)
}

func newEnv(t *testing.T, api ...func(*httpapi.Options)) *env {
	t.Helper()
	srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) {
		o.IntrospectionSecret = feedSecret
		for _, f := range api {
			f(o)
		}
	}))
	e := &env{srv: srv}
	e.client = &http.Client{Transport: countingTransport{base: srv.HTTP.Client().Transport, e: e}}
	return e
}

// options are what a resource server trusting e.srv would configure, on
// the Latchkey engine's clock (which starts in 2030).
func (e *env) options() verifier.Options {
	return verifier.Options{
		Issuer:              "latchkey",
		Audience:            "latchkey",
		HTTPClient:          e.client,
		Now:                 e.srv.Engine.Clock.Now,
		RevocationFeedURL:   e.srv.URL + "/v1/auth/revocations",
		RevocationFeedToken: feedSecret,
	}
}

func (e *env) newVerifier(t *testing.T, opts verifier.Options) *verifier.Verifier {
	t.Helper()
	v, err := verifier.New(e.srv.URL+"/.well-known/jwks.json", opts)
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	return v
}

// syncedVerifier is a verifier with the default options that has read the
// feed once, as a resource server would be after starting Run.
func (e *env) syncedVerifier(t *testing.T) *verifier.Verifier {
	t.Helper()
	v := e.newVerifier(t, e.options())
	if err := v.PollOnce(t.Context()); err != nil {
		t.Fatalf("PollOnce: %v", err)
	}
	return v
}

// signIn signs in over HTTP with the mobile endpoint and returns the access
// and refresh tokens.
func (e *env) signIn(t *testing.T, u *latchkey.User) (access, refresh string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": u.Email, "password": latchkeytest.DefaultPassword})
	resp, err := e.srv.HTTP.Client().Post(e.srv.URL+"/v1/auth/login-mobile", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	defer resp.Body.Close()
	var tr httpapi.TokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: status %d, decode error %v", resp.StatusCode, err)
	}
	return tr.AccessToken, tr.RefreshToken
}

// logOut ends a session over HTTP as a mobile client would.
func (e *env) logOut(t *testing.T, refresh string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"refresh_token": refresh})
	resp, err := e.srv.HTTP.Client().Post(e.srv.URL+"/v1/auth/logout", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("log out: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("log out: status %d, want 204", resp.StatusCode)
	}
	e.settle()
}

// settle lets the engine's clock pass latchkey.RevocationFeedDelay: the feed
// serves a revocation only once no earlier one can still commit.
func (e *env) settle() { e.srv.Engine.Clock.Advance(latchkey.RevocationFeedDelay) }

// resourceServer is another service protecting its handlers with v: /me
// for any signed-in user, answering the claims, and /admin for admins.
func resourceServer(t *testing.T, v *verifier.Verifier) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /me", v.RequireAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := verifier.ClaimsFrom(r.Context())
		if !ok {
			http.Error(w, "no claims in context", http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(c)
	})))
	mux.Handle("GET /admin", v.RequireRole(verifier.RoleAdmin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFrom(r.Context())
		io.WriteString(w, "hello admin "+c.UserID.String())
	})))
	rs := httptest.NewServer(mux)
	t.Cleanup(rs.Close)
	return rs
}

type response struct {
	status  int
	header  http.Header
	body    []byte
	problem struct {
		Type, Title, Detail, Code string
		Status                    int
	}
}

// get calls the resource server with authorization as the Authorization
// header (none if empty).
func get(t *testing.T, rs *httptest.Server, path, authorization string) response {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, rs.URL+path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := rs.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	out := response{status: resp.StatusCode, header: resp.Header}
	out.body, _ = io.ReadAll(resp.Body)
	if resp.Header.Get("Content-Type") == "application/problem+json" {
		if err := json.Unmarshal(out.body, &out.problem); err != nil {
			t.Fatalf("GET %s: problem body %q: %v", path, out.body, err)
		}
	}
	return out
}

// wantProblem checks a problem+json answer.
func wantProblem(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status || r.problem.Code != code || r.problem.Status != status ||
		r.problem.Type != "about:blank" || r.problem.Title != http.StatusText(status) || r.problem.Detail == "" {
		t.Errorf("got %d %s, want %d with problem+json code %q", r.status, r.body, status, code)
	}
}

func TestValidTokenReachesHandlerWithClaims(t *testing.T) {
	e := newEnv(t)
	u := latchkeytest.NewUser(t, e.srv.Engine)
	access, _ := e.signIn(t, u)
	rs := resourceServer(t, e.syncedVerifier(t))

	r := get(t, rs, "/me", "Bearer "+access)
	if r.status != http.StatusOK {
		t.Fatalf("GET /me: %d %s", r.status, r.body)
	}
	var c verifier.Claims
	if err := json.Unmarshal(r.body, &c); err != nil {
		t.Fatal(err)
	}
	cfg := e.srv.Engine.Config()
	now := e.srv.Engine.Clock.Now()
	if c.UserID != u.ID || c.Role != verifier.RoleUser || c.ClientID != cfg.ClientID || c.TokenVersion != u.TokenVersion {
		t.Errorf("claims = %+v, want user %s, role user, client %s, version %d", c, u.ID, cfg.ClientID, u.TokenVersion)
	}
	if c.SessionID == uuid.Nil || c.ID == "" || !strings.HasPrefix(c.KeyID, "sig_") {
		t.Errorf("claims = %+v, want a session id, a jti and a signing key id", c)
	}
	if !c.IssuedAt.Equal(now.Truncate(time.Second)) || c.ExpiresAt.Sub(c.IssuedAt) != cfg.AccessTTL {
		t.Errorf("iat %v exp %v, want iat %v and a lifetime of %v", c.IssuedAt, c.ExpiresAt, now, cfg.AccessTTL)
	}
	// The lowercase scheme is the same scheme (RFC 7235 §2.1).
	if r := get(t, rs, "/me", "bearer "+access); r.status != http.StatusOK {
		t.Errorf("lowercase scheme: %d, want 200", r.status)
	}
}

func TestRefusedRequests(t *testing.T) {
	e := newEnv(t)
	u := latchkeytest.NewUser(t, e.srv.Engine)
	access, _ := e.signIn(t, u)
	rs := resourceServer(t, e.syncedVerifier(t))

	tests := []struct {
		name, authorization, code, challenge string
	}{
		{"no header", "", "not_authenticated", "Bearer"},
		{"other scheme", "Basic dXNlcjpwYXNz", "not_authenticated", "Bearer"},
		{"empty token", "Bearer ", "invalid_token", `Bearer error="invalid_token"`},
		{"garbage", "Bearer not-a-token", "invalid_token", `Bearer error="invalid_token"`},
		{"three garbage parts", "Bearer a.b.c", "invalid_token", `Bearer error="invalid_token"`},
		{"truncated", "Bearer " + access[:len(access)-10], "invalid_token", `Bearer error="invalid_token"`},
		{"oversized", "Bearer " + access + strings.Repeat("A", 5000), "invalid_token", `Bearer error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, rs, "/me", tt.authorization)
			wantProblem(t, r, http.StatusUnauthorized, tt.code)
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, tt.challenge) {
				t.Errorf("WWW-Authenticate = %q, want prefix %q", got, tt.challenge)
			}
		})
	}
}

func TestExpiredToken(t *testing.T) {
	e := newEnv(t)
	u := latchkeytest.NewUser(t, e.srv.Engine)
	access, _ := e.signIn(t, u)
	v := e.syncedVerifier(t)
	rs := resourceServer(t, v)
	cfg := e.srv.Engine.Config()

	// Within the leeway the token still passes; past it, it is expired.
	e.srv.Engine.Clock.Advance(cfg.AccessTTL + verifier.DefaultLeeway - time.Second)
	if err := v.PollOnce(t.Context()); err != nil { // as Run would have
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), access); err != nil {
		t.Fatalf("inside the leeway: %v", err)
	}
	e.srv.Engine.Clock.Advance(2 * time.Second)
	if _, err := v.Verify(t.Context(), access); !errors.Is(err, verifier.ErrExpiredToken) {
		t.Fatalf("past exp + leeway: err = %v, want ErrExpiredToken", err)
	}
	r := get(t, rs, "/me", "Bearer "+access)
	wantProblem(t, r, http.StatusUnauthorized, "token_expired")
	if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q, want error=invalid_token (RFC 6750 §3.1)", got)
	}
}

func TestWrongIssuerOrAudience(t *testing.T) {
	e := newEnv(t)
	u := latchkeytest.NewUser(t, e.srv.Engine)
	access, _ := e.signIn(t, u)
	for _, tt := range []struct{ name, issuer, audience string }{
		{"issuer", "https://other-issuer.example", "latchkey"},
		{"audience", "latchkey", "billing-service"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := e.options()
			opts.Issuer, opts.Audience = tt.issuer, tt.audience
			v := e.newVerifier(t, opts)
			if err := v.PollOnce(t.Context()); err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(t.Context(), access); !errors.Is(err, verifier.ErrInvalidToken) {
				t.Errorf("err = %v, want ErrInvalidToken", err)
			}
			wantProblem(t, get(t, resourceServer(t, v), "/me", "Bearer "+access), http.StatusUnauthorized, "invalid_token")
		})
	}
}

func TestRequireRole(t *testing.T) {
	e := newEnv(t)
	user := latchkeytest.NewUser(t, e.srv.Engine)
	admin := latchkeytest.NewUser(t, e.srv.Engine, latchkeytest.Admin())
	userToken, _ := e.signIn(t, user)
	adminToken, _ := e.signIn(t, admin)
	rs := resourceServer(t, e.syncedVerifier(t))

	r := get(t, rs, "/admin", "Bearer "+userToken)
	wantProblem(t, r, http.StatusForbidden, "forbidden")
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer error="insufficient_scope"` {
		t.Errorf("WWW-Authenticate = %q, want insufficient_scope (RFC 6750 §3.1)", got)
	}
	if r := get(t, rs, "/admin", "Bearer "+adminToken); r.status != http.StatusOK || string(r.body) != "hello admin "+admin.ID.String() {
		t.Errorf("admin: %d %q, want 200", r.status, r.body)
	}
	// RequireRole authenticates on its own too.
	wantProblem(t, get(t, rs, "/admin", ""), http.StatusUnauthorized, "not_authenticated")
}

func TestRequireRoleBehindRequireAuth(t *testing.T) {
	e := newEnv(t)
	admin := latchkeytest.NewUser(t, e.srv.Engine, latchkeytest.Admin())
	token, _ := e.signIn(t, admin)
	v := e.syncedVerifier(t)
	h := v.RequireAuth(v.RequireRole(verifier.RoleAdmin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("status %d %s", rec.Code, rec.Body)
	}
}

// jwksKey is the first key of the server's JWKS.
func jwksKey(t *testing.T, e *env) latchkey.JWK {
	t.Helper()
	resp, err := e.srv.HTTP.Client().Get(e.srv.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set latchkey.JWKS
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS: %v, %d keys", err, len(set.Keys))
	}
	return set.Keys[0]
}

func TestForgedTokens(t *testing.T) {
	e := newEnv(t)
	u := latchkeytest.NewUser(t, e.srv.Engine)
	access, _ := e.signIn(t, u)
	v := e.syncedVerifier(t)
	if _, err := v.Verify(t.Context(), access); err != nil {
		t.Fatalf("genuine token: %v", err)
	}
	real := jwksKey(t, e)
	pub, _ := base64.RawURLEncoding.DecodeString(real.X)
	// The genuine token's claims, replayed under forged headers and
	// signatures.
	claims := decodePart(t, strings.Split(access, ".")[1])
	header := map[string]any{"typ": "at+jwt", "kid": real.KeyID}
	rs := resourceServer(t, v)

	tests := map[string]string{
		"alg none":                        unsigned(with(header, "alg", "none"), claims),
		"alg none, no kid":                unsigned(map[string]any{"alg": "none", "typ": "at+jwt"}, claims),
		"HS256 keyed with the public key": hmacSigned(pub, with(header, "alg", "HS256"), claims),
		"HS256 keyed with the JWK's x":    hmacSigned([]byte(real.X), with(header, "alg", "HS256"), claims),
		"EdDSA, another key, real kid":    edSigned(newKey(t), with(header, "alg", "EdDSA"), claims),
		"EdDSA, another key, no kid":      edSigned(newKey(t), map[string]any{"alg": "EdDSA", "typ": "at+jwt"}, claims),
		"EdDSA, another key, unknown kid": edSigned(newKey(t), with(with(header, "alg", "EdDSA"), "kid", "sig_attacker"), claims),
		"claims changed after signing":    resign(access, with(claims, "role", "admin")),
		"signature of another token":      swapSignature(access, e.signInToken(t, u)),
	}
	fetches := e.jwksFetches.Load()
	for name, tok := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Verify(t.Context(), tok); !errors.Is(err, verifier.ErrInvalidToken) {
				t.Errorf("err = %v, want ErrInvalidToken", err)
			}
			wantProblem(t, get(t, rs, "/me", "Bearer "+tok), http.StatusUnauthorized, "invalid_token")
		})
	}
	// Only an unknown kid could justify a refetch, and the keys were fetched
	// just now: none of the forgeries reached the server.
	if got := e.jwksFetches.Load(); got != fetches {
		t.Errorf("JWKS fetched %d more times, want 0", got-fetches)
	}
}

// signInToken signs in again and returns only the access token.
func (e *env) signInToken(t *testing.T, u *latchkey.User) string {
	access, _ := e.signIn(t, u)
	return access
}

func TestKeyRotationRefetchesOnUnknownKid(t *testing.T) {
	// A JWKS max-age longer than the publish lead, so that only the unknown
	// kid can explain a refetch.
	e := newEnv(t, func(o *httpapi.Options) { o.JWKSMaxAge = time.Hour })
	u := latchkeytest.NewUser(t, e.srv.Engine)
	oldToken, _ := e.signIn(t, u)
	v := e.syncedVerifier(t)
	oldClaims, err := v.Verify(t.Context(), oldToken)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.jwksFetches.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", got)
	}

	info, err := e.srv.Engine.RotateKey(t.Context(), latchkey.KeySigning)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Engine.Clock.Advance(e.srv.Engine.Config().KeyPublishLead + time.Second)
	if err := v.PollOnce(t.Context()); err != nil { // as Run would have
		t.Fatal(err)
	}
	newToken, _ := e.signIn(t, u)
	newClaims, err := v.Verify(t.Context(), newToken)
	if err != nil {
		t.Fatalf("token signed with the new key: %v", err)
	}
	if newClaims.KeyID != info.ID || newClaims.KeyID == oldClaims.KeyID {
		t.Errorf("new token's kid = %s, want the rotated key %s (old %s)", newClaims.KeyID, info.ID, oldClaims.KeyID)
	}
	if got := e.jwksFetches.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (one refetch for the new kid)", got)
	}
	// Tokens of the retired key stay good until they expire, without
	// another fetch.
	if _, err := v.Verify(t.Context(), oldToken); err != nil {
		t.Errorf("token of the retired key: %v", err)
	}
	if got := e.jwksFetches.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want still 2", got)
	}
}

func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	e := newEnv(t)
	u := latchkeytest.NewUser(t, e.srv.Engine)
	access, _ := e.signIn(t, u)
	v := e.syncedVerifier(t)
	if _, err := v.Verify(t.Context(), access); err != nil {
		t.Fatal(err)
	}
	claims := decodePart(t, strings.Split(access, ".")[1])
	attacker := newKey(t)
	// burst verifies n tokens with made-up kids at once, all released by one
	// barrier, and checks that every one is refused.
	burst := func(n int) {
		t.Helper()
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			tok := edSigned(attacker, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": "sig_" + uuid.NewString()}, claims)
			wg.Go(func() {
				<-start
				_, errs[i] = v.Verify(t.Context(), tok)
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if !errors.Is(err, verifier.ErrInvalidToken) {
				t.Fatalf("made-up kid: err = %v, want ErrInvalidToken", err)
			}
		}
	}
	step := func(advance time.Duration, wantFetches int64) {
		t.Helper()
		e.srv.Engine.Clock.Advance(advance)
		burst(50)
		if got := e.jwksFetches.Load(); got != wantFetches {
			t.Fatalf("after %v more: JWKS fetched %d times, want %d", advance, got, wantFetches)
		}
	}
	step(0, 1) // fetched just now for the genuine token
	step(verifier.DefaultMinRefetchInterval, 2)
	step(verifier.DefaultMinRefetchInterval/2, 2)
	step(verifier.DefaultMinRefetchInterval/2, 3)
	// The genuine token never needed any of it.
	if _, err := v.Verify(t.Context(), access); err != nil {
		t.Fatal(err)
	}
}

func TestLogoutSeenThroughFeed(t *testing.T) {
	e := newEnv(t)
	u := latchkeytest.NewUser(t, e.srv.Engine)
	access, refresh := e.signIn(t, u)
	otherAccess, _ := e.signIn(t, u) // another device, still signed in
	v := e.syncedVerifier(t)
	rs := resourceServer(t, v)
	if r := get(t, rs, "/me", "Bearer "+access); r.status != http.StatusOK {
		t.Fatalf("before logout: %d %s", r.status, r.body)
	}

	e.logOut(t, refresh)
	// Offline, the token is still good until the feed says otherwise.
	claims, err := v.Verify(t.Context(), access)
	if err != nil {
		t.Fatalf("before the poll: %v", err)
	}
	if err := v.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), access); !errors.Is(err, verifier.ErrRevokedSession) {
		t.Fatalf("after the poll: err = %v, want ErrRevokedSession", err)
	}
	wantProblem(t, get(t, rs, "/me", "Bearer "+access), http.StatusUnauthorized, "token_revoked")
	if r := get(t, rs, "/me", "Bearer "+otherAccess); r.status != http.StatusOK {
		t.Errorf("the other session: %d %s, want 200", r.status, r.body)
	}
	// The token has not expired: only the feed refuses it.
	if !claims.ExpiresAt.After(e.srv.Engine.Clock.Now()) {
		t.Fatal("test setup: the token has expired")
	}
}

func TestFeedPagesAndLogoutAll(t *testing.T) {
	e := newEnv(t)
	u := latchkeytest.NewUser(t, e.srv.Engine)
	v := e.syncedVerifier(t)
	// More sessions than one feed page (500) would be slow to sign in
	// over HTTP; open them through the test kit.
	var tokens []string
	for range 3 {
		a, _ := e.signIn(t, u)
		tokens = append(tokens, a)
	}
	for range 600 {
		latchkeytest.NewRefreshToken(t, e.srv.Engine, u, latchkeytest.Mobile())
	}
	n, err := e.srv.Engine.LogoutAll(t.Context(), u.ID, latchkey.Device{})
	if err != nil || n != 603 {
		t.Fatalf("LogoutAll = %d, %v; want 603", n, err)
	}
	e.settle()
	polls := e.feedPolls.Load()
	if err := v.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := e.feedPolls.Load() - polls; got != 2 {
		t.Errorf("PollOnce made %d requests, want 2 pages", got)
	}
	for _, a := range tokens {
		if _, err := v.Verify(t.Context(), a); !errors.Is(err, verifier.ErrRevokedSession) {
			t.Errorf("after logout-all: err = %v, want ErrRevokedSession", err)
		}
	}
	// The next poll starts after the cursor: one empty page.
	polls = e.feedPolls.Load()
	if err := v.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := e.feedPolls.Load() - polls; got != 1 {
		t.Errorf("second PollOnce made %d requests, want 1", got)
	}
}

func TestFeedMustBeReadBeforeTokensPass(t *testing.T) {
	e := newEnv(t)
	u := latchkeytest.NewUser(t, e.srv.Engine)
	access, _ := e.signIn(t, u)
	v := e.newVerifier(t, e.options())
	rs := resourceServer(t, v)

	if _, err := v.Verify(t.Context(), access); !errors.Is(err, verifier.ErrUnavailable) {
		t.Fatalf("before any poll: err = %v, want ErrUnavailable", err)
	}
	r := get(t, rs, "/me", "Bearer "+access)
	wantProblem(t, r, http.StatusServiceUnavailable, "verifier_unavailable")
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// Forgeries are still told apart: the signature is checked first.
	if _, err := v.Verify(t.Context(), "garbage"); !errors.Is(err, verifier.ErrInvalidToken) {
		t.Errorf("garbage before any poll: err = %v, want ErrInvalidToken", err)
	}
	if err := v.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := get(t, rs, "/me", "Bearer "+access); r.status != http.StatusOK {
		t.Errorf("after the poll: %d %s", r.status, r.body)
	}
}

func TestFeedFailureKeepsState(t *testing.T) {
	e := newEnv(t)
	u := latchkeytest.NewUser(t, e.srv.Engine)
	first, firstRefresh := e.signIn(t, u)
	second, secondRefresh := e.signIn(t, u)
	v := e.syncedVerifier(t)
	e.logOut(t, firstRefresh)
	if err := v.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}

	e.feedDown.Store(true)
	// A second later: with the engine's clock standing still both
	// revocations would carry the same revoked_at, and the feed breaks such
	// ties by session id, so the second could sort behind the cursor (see
	// TestRevocationCommittedOutOfOrderIsFound).
	e.srv.Engine.Clock.Advance(time.Second)
	e.logOut(t, secondRefresh)
	if err := v.PollOnce(t.Context()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("PollOnce with the feed down: err = %v, want the 503", err)
	}
	// What was known stays known; tokens keep being checked.
	if _, err := v.Verify(t.Context(), first); !errors.Is(err, verifier.ErrRevokedSession) {
		t.Errorf("first session: err = %v, want ErrRevokedSession", err)
	}
	if _, err := v.Verify(t.Context(), second); err != nil {
		t.Errorf("second session while the feed is down: err = %v, want nil (not yet known)", err)
	}

	e.feedDown.Store(false)
	if err := v.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), second); !errors.Is(err, verifier.ErrRevokedSession) {
		t.Errorf("second session after recovery: err = %v, want ErrRevokedSession", err)
	}
}

func TestFeedCredentialIsChecked(t *testing.T) {
	e := newEnv(t)
	opts := e.options()
	opts.RevocationFeedToken = "wrong-secret"
	v := e.newVerifier(t, opts)
	if err := v.PollOnce(t.Context()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("PollOnce with a wrong secret: err = %v, want a 401", err)
	}
	if err := v.PollOnce(t.Context()); err == nil {
		t.Fatal("second PollOnce with a wrong secret succeeded")
	}
}

func TestFeedAcceptsAdminAccessToken(t *testing.T) {
	e := newEnv(t)
	admin := latchkeytest.NewUser(t, e.srv.Engine, latchkeytest.Admin())
	adminToken, _ := e.signIn(t, admin)
	opts := e.options()
	opts.RevocationFeedToken = adminToken
	if err := e.newVerifier(t, opts).PollOnce(t.Context()); err != nil {
		t.Fatalf("PollOnce with an admin access token: %v", err)
	}
}

// A revocation that commits after a later one (two server instances whose
// clocks differ by seconds, or a slow commit) sorts before the cursor the
// verifier already holds. The periodic reread still finds it.
func TestRevocationCommittedOutOfOrderIsFound(t *testing.T) {
	e := newEnv(t)
	u := latchkeytest.NewUser(t, e.srv.Engine)
	_, refreshA := e.signIn(t, u)
	accessB, refreshB := e.signIn(t, u)
	engineClock := e.srv.Engine.Clock
	// The verifier's clock moves on its own, so that the engine's can be
	// set back to stamp B's revocation before A's.
	vclock := &latchkeytest.Clock{}
	vclock.Set(engineClock.Now())
	opts := e.options()
	opts.Now = vclock.Now
	v := e.newVerifier(t, opts)
	if err := v.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}

	engineClock.Advance(time.Minute)
	vclock.Advance(time.Minute)
	e.logOut(t, refreshA)
	if err := v.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	engineClock.Advance(-10 * time.Second)
	e.logOut(t, refreshB) // revoked_at before A's, committed after the poll
	engineClock.Advance(10 * time.Second)

	vclock.Advance(verifier.DefaultPollInterval)
	if err := v.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	vclock.Advance(time.Minute)
	if err := v.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), accessB); !errors.Is(err, verifier.ErrRevokedSession) {
		t.Fatalf("after the reread: err = %v, want ErrRevokedSession", err)
	}
}

func TestTokenLivingLongerThanMaxTokenLifetime(t *testing.T) {
	e := newEnv(t)
	u := latchkeytest.NewUser(t, e.srv.Engine)
	access, _ := e.signIn(t, u)
	opts := e.options()
	opts.MaxTokenLifetime = e.srv.Engine.Config().AccessTTL - time.Minute
	v := e.newVerifier(t, opts)
	if err := v.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), access); !errors.Is(err, verifier.ErrInvalidToken) {
		t.Errorf("err = %v, want ErrInvalidToken: the verifier could forget its revocation before it expires", err)
	}
}

// signalTransport reads each feed response whole and then reports it, so
// that a test knows a poll's data has arrived.
type signalTransport struct {
	base http.RoundTripper
	got  chan<- struct{}
}

func (s signalTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(r)
	if err != nil || r.URL.Path != "/v1/auth/revocations" {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	select {
	case s.got <- struct{}{}:
	default:
	}
	return resp, nil
}

func TestRunPollsUntilCancelled(t *testing.T) {
	e := newEnv(t)
	u := latchkeytest.NewUser(t, e.srv.Engine)
	access, _ := e.signIn(t, u)
	got := make(chan struct{}, 1)
	opts := e.options()
	opts.HTTPClient = &http.Client{Transport: signalTransport{base: e.srv.HTTP.Client().Transport, got: got}}
	v := e.newVerifier(t, opts)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- v.Run(ctx) }()
	<-got // the first poll's page has arrived
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	// Run polled at once, so the verifier has read the feed.
	if _, err := v.Verify(t.Context(), access); err != nil {
		t.Errorf("after Run's first poll: %v", err)
	}
}

func TestNoFeed(t *testing.T) {
	e := newEnv(t)
	u := latchkeytest.NewUser(t, e.srv.Engine)
	access, _ := e.signIn(t, u)
	opts := e.options()
	opts.RevocationFeedURL, opts.RevocationFeedToken = "", ""
	v := e.newVerifier(t, opts)
	if err := v.PollOnce(t.Context()); !errors.Is(err, verifier.ErrNoFeed) {
		t.Errorf("PollOnce = %v, want ErrNoFeed", err)
	}
	if err := v.Run(t.Context()); !errors.Is(err, verifier.ErrNoFeed) {
		t.Errorf("Run = %v, want ErrNoFeed", err)
	}
	// Without a feed, tokens are checked offline only.
	if _, err := v.Verify(t.Context(), access); err != nil {
		t.Errorf("Verify without a feed: %v", err)
	}
}

func TestFetchKeys(t *testing.T) {
	e := newEnv(t)
	v := e.newVerifier(t, e.options())
	if err := v.FetchKeys(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := e.jwksFetches.Load(); got != 1 {
		t.Errorf("JWKS fetched %d times, want 1", got)
	}
	opts := e.options()
	opts.Now = nil
	bad, err := verifier.New(e.srv.URL+"/no-such-jwks.json", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.FetchKeys(t.Context()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("FetchKeys on a wrong URL = %v, want the 404", err)
	}
}

// TestStaleFeedStopsVerification: when the feed cannot be read for longer
// than MaxFeedStaleness, Verify answers ErrUnavailable instead of going on
// without revocations; a successful poll restores it.
func TestStaleFeedStopsVerification(t *testing.T) {
	e := newEnv(t)
	u := latchkeytest.NewUser(t, e.srv.Engine)
	access, _ := e.signIn(t, u)
	opts := e.options()
	opts.MaxFeedStaleness = time.Minute
	v := e.newVerifier(t, opts)
	if err := v.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.feedDown.Store(true)
	e.srv.Engine.Clock.Advance(59 * time.Second)
	if err := v.PollOnce(t.Context()); err == nil {
		t.Fatal("PollOnce succeeded with the feed down")
	}
	if _, err := v.Verify(t.Context(), access); err != nil {
		t.Fatalf("within MaxFeedStaleness: %v", err)
	}
	e.srv.Engine.Clock.Advance(2 * time.Second)
	if _, err := v.Verify(t.Context(), access); !errors.Is(err, verifier.ErrUnavailable) {
		t.Fatalf("past MaxFeedStaleness: err = %v, want ErrUnavailable", err)
	}
	e.feedDown.Store(false)
	if err := v.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), access); err != nil {
		t.Fatalf("after the feed came back: %v", err)
	}
}
