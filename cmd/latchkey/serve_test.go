package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// do sends a request to the server and returns the response with its body
// read.
func do(t *testing.T, method, url string, header http.Header, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// TestServeOptions checks that serve hands its HTTP settings to the API:
// CORS origins, the introspection secret and the admin email.
func TestServeOptions(t *testing.T) {
	isolate(t)
	db := filepath.Join(t.TempDir(), "latchkey.db")
	secret := "introspect-" + strings.Repeat("x", 32)
	secretFile := filepath.Join(t.TempDir(), "introspection.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, map[string]string{
		"LATCHKEY_DATABASE_URL":    "sqlite:" + db,
		"LATCHKEY_CORS_ORIGINS":    "https://APP.example.com:443, http://localhost:5173",
		"LATCHKEY_ADMIN_EMAIL":     "boss@example.com",
		"LATCHKEY_TRUSTED_PROXIES": "10.0.0.0/8",
		// The flag wins: this variable is never read.
		"LATCHKEY_INTROSPECTION_SECRET": "not-the-secret",
	}, "--introspection-secret-file", secretFile)

	for _, tt := range []struct{ origin, allowed string }{
		{"https://app.example.com", "https://app.example.com"}, // as browsers send it
		{"http://localhost:5173", "http://localhost:5173"},
		{"https://evil.example", ""},
	} {
		res, _ := do(t, http.MethodGet, srv.url+"/health", http.Header{"Origin": {tt.origin}}, "")
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != tt.allowed {
			t.Errorf("Origin %s: Access-Control-Allow-Origin %q, want %q", tt.origin, got, tt.allowed)
		}
	}

	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for _, tt := range []struct {
		bearer string
		status int
	}{{secret, http.StatusOK}, {"not-the-secret", http.StatusUnauthorized}} {
		h := form.Clone()
		h.Set("Authorization", "Bearer "+tt.bearer)
		res, body := do(t, http.MethodPost, srv.url+"/oauth/introspect", h, url.Values{"token": {"lkr_made_up"}}.Encode())
		if res.StatusCode != tt.status {
			t.Errorf("introspect with bearer %q: %s %s, want %d", tt.bearer, res.Status, body, tt.status)
		}
		if tt.status == http.StatusOK && strings.TrimSpace(string(body)) != `{"active":false}` {
			t.Errorf("introspect of a made-up token: %s, want {\"active\":false}", body)
		}
	}

	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	for _, tt := range []struct {
		email string
		role  latchkey.Role
	}{{"Boss@Example.com", latchkey.RoleAdmin}, {"staff@example.com", latchkey.RoleUser}} {
		b, _ := json.Marshal(map[string]string{"email": tt.email, "password": strongPassword, "full_name": "Someone"})
		res, body := do(t, http.MethodPost, srv.url+"/v1/users", jsonHeader, string(b))
		var u struct{ Role latchkey.Role }
		if res.StatusCode != http.StatusCreated || json.Unmarshal(body, &u) != nil || u.Role != tt.role {
			t.Errorf("register %s: %s %s; want 201 and role %s", tt.email, res.Status, body, tt.role)
		}
	}

	if code := srv.stop(); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, srv.stderr)
	}
	if strings.Contains(srv.stderr.String(), secret) || strings.Contains(srv.stdout.String(), secret) {
		t.Errorf("serve printed the introspection secret")
	}
}

// TestReloadKeys checks that serve's periodic reload picks up a key that
// another process added.
func TestReloadKeys(t *testing.T) {
	db := filepath.Join(t.TempDir(), "auth.db")
	server := openTestEngine(t, db, testKey, nil)
	other := openTestEngine(t, db, testKey, nil)
	k, err := other.RotateKey(t.Context(), latchkey.KeySigning)
	if err != nil {
		t.Fatal(err)
	}
	published := func() bool {
		return slices.ContainsFunc(server.JWKS().Keys, func(j latchkey.JWK) bool { return j.KeyID == k.ID })
	}
	if published() {
		t.Fatal("the server engine knows the new key before any reload")
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		reloadKeys(ctx, server, slog.New(slog.DiscardHandler), 10*time.Millisecond)
	}()
	// Waiting for an observable state, bounded: the reloader runs every
	// 10ms.
	deadline := time.Now().Add(10 * time.Second)
	for !published() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done // reloadKeys returns when its context ends
	if !published() {
		t.Errorf("the new key %s was not loaded within 10s", k.ID)
	}
}

func TestParseOrigins(t *testing.T) {
	got, err := parseOrigins(" https://App.Example.com ,http://localhost:5173,https://x.example:443,http://y.example:80,http://[::1]:8080,,", "--cors-origins")
	want := []string{"https://app.example.com", "http://localhost:5173", "https://x.example", "http://y.example", "http://[::1]:8080"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("parseOrigins = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"*", "null", "app.example.com", "https://", "https://a.example/", "https://a.example/x",
		"https://a.example?x", "https://a.example#", "https://u:p@a.example", "wss://a.example", "https://a.example:"} {
		if _, err := parseOrigins(bad, "--cors-origins"); err == nil {
			t.Errorf("parseOrigins(%q) accepted it", bad)
		} else if _, ok := err.(*usageError); !ok {
			t.Errorf("parseOrigins(%q): %v is not a usage error", bad, err)
		}
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := parseTrustedProxies("10.0.0.0/8, 192.0.2.7 ,fd00::/8,10.1.2.3/16,::ffff:172.16.0.0/108,2001:db8::1", "--trusted-proxies")
	var want []netip.Prefix
	for _, p := range []string{"10.0.0.0/8", "192.0.2.7/32", "fd00::/8", "10.1.0.0/16", "172.16.0.0/12", "2001:db8::1/128"} {
		want = append(want, netip.MustParsePrefix(p))
	}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("parseTrustedProxies = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"proxy.internal", "10.0.0.0/33", "10.0.0", "fe80::1%eth0", "10.0.0.0/8/8"} {
		if _, err := parseTrustedProxies(bad, "--trusted-proxies"); err == nil {
			t.Errorf("parseTrustedProxies(%q) accepted it", bad)
		}
	}
}

// TestServeRedis checks --redis-url: an unreachable Redis stops serve with
// one line and exit 1; a reachable one (LATCHKEY_TEST_REDIS_URL) backs the
// rate limits.
func TestServeRedis(t *testing.T) {
	isolate(t)
	db := filepath.Join(t.TempDir(), "latchkey.db")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens here now
	code, _, stderr := runCLI(t, t.Context(), map[string]string{"LATCHKEY_DATABASE_URL": "sqlite:" + db},
		"serve", "--addr", "127.0.0.1:0", "--redis-url", "redis://"+closed+"/0")
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); code != 1 || !strings.Contains(lines[len(lines)-1], "rate limits") {
		t.Fatalf("unreachable Redis: exit %d, want 1 with a line on rate limits; stderr %q", code, stderr)
	}

	url := os.Getenv("LATCHKEY_TEST_REDIS_URL")
	if url == "" {
		t.Skip("LATCHKEY_TEST_REDIS_URL not set; skipping the reachable-Redis half")
	}
	srv := startServe(t, map[string]string{"LATCHKEY_DATABASE_URL": "sqlite:" + db, "LATCHKEY_REDIS_URL": url})
	res, body := do(t, http.MethodPost, srv.url+"/v1/auth/login", http.Header{"Content-Type": {"application/json"}},
		`{"email":"nobody@example.com","password":"wrong password"}`)
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("login through a Redis-limited server: %s %s, want 401", res.Status, body)
	}
	if code := srv.stop(); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, srv.stderr)
	}
}
