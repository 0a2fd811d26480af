package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/httpapi"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

// TestAdminEmailLookAlike: only the admin email itself, in the engine's
// canonical form, gets the admin role; a look-alike that case folding would
// match ("ſ" for "s") is an ordinary user.
func TestAdminEmailLookAlike(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) { o.AdminEmail = "admin@example.test" }))
	for _, c := range []struct{ email, role string }{
		{"Admin@Example.TEST", "admin"},
		{"admin@example.te\u017ft", "user"},
	} {
		var u httpapi.UserJSON
		send(t, srv, nil, request{method: "POST", path: "/v1/users",
			json: map[string]string{"email": c.email, "password": strongPassword}}).decode(t, http.StatusCreated, &u)
		if string(u.Role) != c.role {
			t.Errorf("registering %q gave role %q, want %q", c.email, u.Role, c.role)
		}
	}
}

// TestCurrentPasswordChecksAreLimited: a stolen access token is not an
// unlimited oracle for the current password.
func TestCurrentPasswordChecksAreLimited(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) {
		o.Limits.LoginPerAccount = httpapi.Rate{PerMinute: 1, Burst: 3}
	}))
	_, s := newSignedInUser(t, srv)
	for i := range 3 {
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/change-password", bearer: s.access,
			json: map[string]string{"current_password": "guess-" + string(rune('a'+i)), "new_password": strongPassword}}).
			problem(t, http.StatusUnauthorized, "invalid_credentials")
	}
	r := send(t, srv, nil, request{method: "PATCH", path: "/v1/users/me", bearer: s.access,
		json: map[string]string{"email": "new@example.com", "current_password": "another guess"}})
	r.problem(t, http.StatusTooManyRequests, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// TestForgedTokenCannotSpendVictimsRefreshBudget: the per-session refresh
// limit counts only tokens whose tag verifies.
func TestForgedTokenCannotSpendVictimsRefreshBudget(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) {
		o.Limits.RefreshPerSession = httpapi.Rate{PerMinute: 1, Burst: 2}
		o.Limits.RefreshPerIP = httpapi.Rate{PerMinute: 1000, Burst: 1000}
	}))
	_, s := newSignedInUser(t, srv)
	forged := tamper(s.refresh, len(s.refresh)-3) // same session id, broken tag
	for range 5 {
		refresh(t, srv, forged, nil).problem(t, http.StatusUnauthorized, "invalid_token")
	}
	refresh(t, srv, s.refresh, nil).want(t, http.StatusOK)
}

// TestDuplicateRefreshCookies: a second refresh_token cookie (planted by a
// sibling subdomain) is refused, and the real cookie is not cleared.
func TestDuplicateRefreshCookies(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t)
	_, s := newSignedInUser(t, srv)
	req, err := http.NewRequest("POST", srv.URL+"/v1/auth/refresh", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", "refresh_token=planted; refresh_token="+s.refresh)
	res, err := srv.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("two refresh cookies: %d, want 401", res.StatusCode)
	}
	for _, c := range res.Cookies() {
		if c.Name == httpapi.RefreshCookie {
			t.Fatalf("the response touched the refresh cookie: %v", c)
		}
	}
	refresh(t, srv, s.refresh, nil).want(t, http.StatusOK)
}

// failingLimiter is a shared limiter that is down.
type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, string, httpapi.Rate) (bool, time.Duration, error) {
	return false, 0, errors.New("redis: connection refused")
}

// TestLimiterFailureKeepsLimits: when the shared limiter fails, limits are
// enforced in process rather than lifted.
func TestLimiterFailureKeepsLimits(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) {
		o.Limiter = failingLimiter{}
		o.Limits.LoginPerAccount = httpapi.Rate{PerMinute: 1, Burst: 2}
	}))
	u, _ := newSignedInUser(t, srv) // one sign-in spends one of the two
	send(t, srv, nil, request{method: "POST", path: "/v1/auth/login",
		json: map[string]string{"email": u.Email, "password": "wrong password"}}).problem(t, http.StatusUnauthorized, "invalid_credentials")
	send(t, srv, nil, request{method: "POST", path: "/v1/auth/login",
		json: map[string]string{"email": u.Email, "password": "wrong password"}}).problem(t, http.StatusTooManyRequests, "rate_limited")
	m := send(t, srv, nil, request{method: "GET", path: "/metrics"})
	if !strings.Contains(string(m.body), "latchkey_rate_limiter_errors_total") {
		t.Error("/metrics lacks latchkey_rate_limiter_errors_total")
	}
}
