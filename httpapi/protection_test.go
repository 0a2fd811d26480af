package httpapi_test

import (
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/httpapi"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t)
	u := latchkeytest.NewUser(t, srv.Engine)
	big := strings.Repeat("a", 100<<10)

	for name, rq := range map[string]request{
		"register json": {method: "POST", path: "/v1/users",
			json: map[string]string{"email": "big@test.example", "password": strongPassword, "full_name": big}},
		"login json": {method: "POST", path: "/v1/auth/login",
			json: map[string]string{"email": u.Email, "password": big}},
		"login form": {method: "POST", path: "/v1/auth/login",
			form: url.Values{"username": {u.Email}, "password": {big}}},
		"oauth revoke form": {method: "POST", path: "/oauth/revoke", form: url.Values{"token": {big}}},
	} {
		t.Run(name, func(t *testing.T) {
			send(t, srv, nil, rq).problem(t, http.StatusRequestEntityTooLarge, "body_too_large")
		})
	}

	// Just under the cap is read normally.
	send(t, srv, nil, request{method: "POST", path: "/v1/auth/login",
		json: map[string]string{"email": u.Email, "password": strings.Repeat("a", 60<<10)}}).
		problem(t, http.StatusUnauthorized, "invalid_credentials")
}

func TestUnknownRouteAndMethod(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t)

	for _, path := range []string{"/nope", "/v1/auth/nope", "/v2/users"} {
		send(t, srv, nil, request{method: "GET", path: path}).problem(t, http.StatusNotFound, "not_found")
	}

	for _, tc := range []struct {
		method, path string
		allow        []string
	}{
		{"GET", "/v1/auth/login", []string{"POST"}},
		{"PUT", "/v1/users/me", []string{"PATCH"}},
		{"POST", "/health", []string{"GET", "HEAD"}},
		{"PUT", "/v1/admin/users/0190d6a0-0000-7000-8000-000000000000", []string{"GET", "PATCH", "DELETE"}},
	} {
		r := send(t, srv, nil, request{method: tc.method, path: tc.path})
		r.problem(t, http.StatusMethodNotAllowed, "method_not_allowed")
		allow := r.header.Get("Allow")
		for _, m := range tc.allow {
			if !strings.Contains(allow, m) {
				t.Errorf("%s %s: Allow = %q, want %s in it", tc.method, tc.path, allow, m)
			}
		}
	}
}

// fromIP makes requests appear to come from ip through a trusted proxy.
func fromIP(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }

var loopbackProxy = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

func wantRateLimited(tb testing.TB, r *answer) {
	tb.Helper()
	r.problem(tb, http.StatusTooManyRequests, "rate_limited")
	n, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || n < 1 {
		tb.Errorf("Retry-After = %q, want a positive number of seconds", r.header.Get("Retry-After"))
	}
}

func TestLoginRateLimits(t *testing.T) {
	t.Parallel()
	login := func(tb testing.TB, srv *latchkeytest.Server, email, password string, header map[string]string) *answer {
		tb.Helper()
		return send(tb, srv, nil, request{method: "POST", path: "/v1/auth/login",
			json: map[string]string{"email": email, "password": password}, header: header})
	}

	t.Run("per account, without locking the owner out", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) {
			o.Limits = httpapi.Limits{LoginPerAccount: httpapi.Rate{PerMinute: 1, Burst: 2}}
			o.TrustedProxies = loopbackProxy
		}))
		victim := latchkeytest.NewUser(t, srv.Engine)
		other := latchkeytest.NewUser(t, srv.Engine)
		attacker := fromIP("203.0.113.7")
		for range 2 {
			login(t, srv, victim.Email, "Guess12345", attacker).problem(t, http.StatusUnauthorized, "invalid_credentials")
		}
		// Case and spaces do not make a new account.
		wantRateLimited(t, login(t, srv, " "+strings.ToUpper(victim.Email), "Guess12345", attacker))
		wantRateLimited(t, login(t, srv, victim.Email, latchkeytest.DefaultPassword, attacker))
		// The owner, elsewhere, signs in.
		login(t, srv, victim.Email, latchkeytest.DefaultPassword, fromIP("198.51.100.9")).want(t, http.StatusOK)
		// The attacker's address can still sign in to other accounts.
		login(t, srv, other.Email, latchkeytest.DefaultPassword, attacker).want(t, http.StatusOK)
	})

	t.Run("per IP", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) {
			o.Limits = httpapi.Limits{LoginPerIP: httpapi.Rate{PerMinute: 1, Burst: 2}}
			o.TrustedProxies = loopbackProxy
		}))
		u := latchkeytest.NewUser(t, srv.Engine)
		sprayer := fromIP("203.0.113.7")
		login(t, srv, "a@test.example", "Guess12345", sprayer).want(t, http.StatusUnauthorized)
		login(t, srv, "b@test.example", "Guess12345", sprayer).want(t, http.StatusUnauthorized)
		wantRateLimited(t, login(t, srv, u.Email, latchkeytest.DefaultPassword, sprayer))
		login(t, srv, u.Email, latchkeytest.DefaultPassword, fromIP("198.51.100.9")).want(t, http.StatusOK)
		// Mobile sign-in shares the limit.
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/login-mobile", header: sprayer,
			json: map[string]string{"email": u.Email, "password": latchkeytest.DefaultPassword}}).
			problem(t, http.StatusTooManyRequests, "rate_limited")
	})

	t.Run("X-Forwarded-For is ignored without trusted proxies", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) {
			o.Limits = httpapi.Limits{LoginPerIP: httpapi.Rate{PerMinute: 1, Burst: 2}}
		}))
		u := latchkeytest.NewUser(t, srv.Engine)
		login(t, srv, "a@test.example", "Guess12345", fromIP("203.0.113.1")).want(t, http.StatusUnauthorized)
		login(t, srv, "b@test.example", "Guess12345", fromIP("203.0.113.2")).want(t, http.StatusUnauthorized)
		// A new made-up address each time does not buy more guesses.
		wantRateLimited(t, login(t, srv, u.Email, latchkeytest.DefaultPassword, fromIP("203.0.113.3")))
	})
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	sessionIP := func(t *testing.T, srv *latchkeytest.Server, header map[string]string) string {
		t.Helper()
		u := latchkeytest.NewUser(t, srv.Engine)
		r := send(t, srv, nil, request{method: "POST", path: "/v1/auth/login", header: header,
			json: map[string]string{"email": u.Email, "password": latchkeytest.DefaultPassword}})
		var tr httpapi.TokenResponse
		r.decode(t, http.StatusOK, &tr)
		ss := listSessions(t, srv, tr.AccessToken)
		if len(ss) != 1 {
			t.Fatalf("%d sessions, want 1", len(ss))
		}
		return ss[0].IPAddress
	}

	t.Run("untrusted peer", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		if got := sessionIP(t, srv, fromIP("203.0.113.9")); got != "127.0.0.1" {
			t.Errorf("ip_address = %q, want the peer 127.0.0.1", got)
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) { o.TrustedProxies = loopbackProxy }))
		for _, tc := range []struct{ xff, want string }{
			{"203.0.113.9", "203.0.113.9"},
			// The client wrote the first entry itself; the proxy appended
			// the address it saw.
			{"1.2.3.4, 203.0.113.9", "203.0.113.9"},
			// A chain of trusted proxies is skipped.
			{"203.0.113.9, 127.0.0.5", "203.0.113.9"},
			{"", "127.0.0.1"},
			{"not-an-ip", "127.0.0.1"},
		} {
			var h map[string]string
			if tc.xff != "" {
				h = fromIP(tc.xff)
			}
			if got := sessionIP(t, srv, h); got != tc.want {
				t.Errorf("X-Forwarded-For %q: ip_address = %q, want %q", tc.xff, got, tc.want)
			}
		}
	})
}

func TestRegisterRateLimit(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) {
		o.Limits = httpapi.Limits{RegisterPerIP: httpapi.Rate{PerMinute: 1, Burst: 2}}
		o.TrustedProxies = loopbackProxy
	}))
	reg := func(email, ip string) *answer {
		t.Helper()
		return send(t, srv, nil, request{method: "POST", path: "/v1/users", header: fromIP(ip),
			json: map[string]string{"email": email, "password": strongPassword}})
	}
	reg("one@test.example", "203.0.113.7").want(t, http.StatusCreated)
	reg("two@test.example", "203.0.113.7").want(t, http.StatusCreated)
	wantRateLimited(t, reg("three@test.example", "203.0.113.7"))
	reg("three@test.example", "198.51.100.9").want(t, http.StatusCreated)
}

func TestRefreshRateLimits(t *testing.T) {
	t.Parallel()

	t.Run("per session", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) {
			o.Limits = httpapi.Limits{RefreshPerSession: httpapi.Rate{PerMinute: 1, Burst: 2}}
		}))
		u, s := newSignedInUser(t, srv)
		other := signIn(t, srv, u.Email, latchkeytest.DefaultPassword)
		cookie := s.refresh
		for range 2 {
			cookie = refresh(t, srv, cookie, nil).want(t, http.StatusOK).mustRefreshCookie(t).Value
		}
		r := refresh(t, srv, cookie, nil)
		wantRateLimited(t, r)
		if r.refreshCookie() != nil {
			t.Error("a rate-limited refresh touched the cookie")
		}
		refresh(t, srv, other.refresh, nil).want(t, http.StatusOK)
		// The limited session was not harmed: its token is still current.
		var got httpapi.Introspection
		send(t, srv, nil, request{method: "POST", path: "/oauth/introspect",
			bearer: signIn(t, srv, latchkeytest.NewUser(t, srv.Engine, latchkeytest.Admin()).Email, latchkeytest.DefaultPassword).access,
			form:   url.Values{"token": {cookie}}}).decode(t, http.StatusOK, &got)
		if !got.Active {
			t.Error("the rate-limited session's token is no longer active")
		}
	})

	t.Run("per IP", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) {
			o.Limits = httpapi.Limits{RefreshPerIP: httpapi.Rate{PerMinute: 1, Burst: 2}}
			o.TrustedProxies = loopbackProxy
		}))
		u, a := newSignedInUser(t, srv)
		b := signIn(t, srv, u.Email, latchkeytest.DefaultPassword)
		c := signIn(t, srv, u.Email, latchkeytest.DefaultPassword)
		ip := fromIP("203.0.113.7")
		refresh(t, srv, a.refresh, ip).want(t, http.StatusOK)
		refresh(t, srv, b.refresh, ip).want(t, http.StatusOK)
		wantRateLimited(t, refresh(t, srv, c.refresh, ip))
		wantRateLimited(t, send(t, srv, nil, request{method: "POST", path: "/v1/auth/refresh-mobile", header: ip,
			json: map[string]string{"refresh_token": "lkr_x"}}))
		refresh(t, srv, c.refresh, fromIP("198.51.100.9")).want(t, http.StatusOK)
	})
}

func TestCrossSite(t *testing.T) {
	t.Parallel()
	const app = "https://app.example"
	srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) { o.CORSOrigins = []string{app} }))
	u, s := newSignedInUser(t, srv)
	creds := map[string]string{"email": u.Email, "password": latchkeytest.DefaultPassword}

	refused := map[string]map[string]string{
		"other origin":           {"Origin": "https://evil.example"},
		"other port":             {"Origin": strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)},
		"opaque origin":          {"Origin": "null"},
		"cross-site fetch":       {"Sec-Fetch-Site": "cross-site"},
		"same-site fetch":        {"Sec-Fetch-Site": "same-site"},
		"other origin, same-ish": {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"},
	}
	for name, h := range refused {
		t.Run("refused/"+name, func(t *testing.T) {
			for _, rq := range []request{
				{method: "POST", path: "/v1/auth/login", json: creds, header: h},
				{method: "POST", path: "/v1/auth/refresh", cookie: s.refresh, header: h},
				{method: "POST", path: "/v1/auth/logout", cookie: s.refresh, header: h},
			} {
				r := send(t, srv, nil, rq)
				r.problem(t, http.StatusForbidden, "cross_site_request")
				if r.refreshCookie() != nil {
					t.Errorf("%s: a refused request set the cookie", rq.path)
				}
				if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
					t.Errorf("%s: Access-Control-Allow-Origin = %q for a refused origin", rq.path, got)
				}
			}
		})
	}
	// Nothing was rotated or ended by the refused requests.
	s.refresh = refresh(t, srv, s.refresh, nil).want(t, http.StatusOK).mustRefreshCookie(t).Value

	allowed := map[string]map[string]string{
		"same origin":        {"Origin": srv.URL, "Sec-Fetch-Site": "same-origin"},
		"typed in":           {"Sec-Fetch-Site": "none"},
		"no browser headers": {},
		"CORS origin":        {"Origin": app, "Sec-Fetch-Site": "cross-site"},
	}
	for name, h := range allowed {
		t.Run("allowed/"+name, func(t *testing.T) {
			r := send(t, srv, nil, request{method: "POST", path: "/v1/auth/login", json: creds, header: h}).want(t, http.StatusOK)
			c := r.mustRefreshCookie(t).Value
			c = refresh(t, srv, c, h).want(t, http.StatusOK).mustRefreshCookie(t).Value
			send(t, srv, nil, request{method: "POST", path: "/v1/auth/logout", cookie: c, header: h}).want(t, http.StatusNoContent)
			if h["Origin"] == app {
				if got := r.header.Get("Access-Control-Allow-Origin"); got != app {
					t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, app)
				}
				if got := r.header.Get("Access-Control-Allow-Credentials"); got != "true" {
					t.Errorf("Access-Control-Allow-Credentials = %q, want true", got)
				}
				if !slices.Contains(r.header.Values("Vary"), "Origin") {
					t.Errorf("Vary = %q, want Origin", r.header.Values("Vary"))
				}
			} else if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("Access-Control-Allow-Origin = %q without a CORS origin", got)
			}
		})
	}

	t.Run("preflight", func(t *testing.T) {
		r := send(t, srv, nil, request{method: "OPTIONS", path: "/v1/auth/refresh", header: map[string]string{
			"Origin": app, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}})
		r.want(t, http.StatusNoContent)
		for k, want := range map[string]string{
			"Access-Control-Allow-Origin":      app,
			"Access-Control-Allow-Credentials": "true",
		} {
			if got := r.header.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		if got := r.header.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "POST") || !strings.Contains(got, "PATCH") {
			t.Errorf("Access-Control-Allow-Methods = %q, want POST and PATCH", got)
		}
		if got := strings.ToLower(r.header.Get("Access-Control-Allow-Headers")); !strings.Contains(got, "content-type") ||
			!strings.Contains(got, "authorization") {
			t.Errorf("Access-Control-Allow-Headers = %q, want Content-Type and Authorization", got)
		}
		if r.header.Get("Access-Control-Max-Age") == "" {
			t.Error("no Access-Control-Max-Age")
		}

		r = send(t, srv, nil, request{method: "OPTIONS", path: "/v1/auth/refresh", header: map[string]string{
			"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}})
		if r.status < 400 {
			t.Errorf("preflight from another origin: status %d, want an error", r.status)
		}
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("preflight from another origin: Access-Control-Allow-Origin = %q", got)
		}
	})

	t.Run("cacheable answers vary by origin", func(t *testing.T) {
		for _, h := range []map[string]string{nil, {"Origin": "https://evil.example"}, {"Origin": app}} {
			r := send(t, srv, nil, request{method: "GET", path: "/.well-known/jwks.json", header: h}).want(t, http.StatusOK)
			if !slices.Contains(r.header.Values("Vary"), "Origin") {
				t.Errorf("JWKS for Origin %q: Vary = %q, want Origin", h["Origin"], r.header.Values("Vary"))
			}
		}
		// Without CORS, nothing varies by origin.
		plain := latchkeytest.NewServer(t)
		r := send(t, plain, nil, request{method: "GET", path: "/.well-known/jwks.json", header: map[string]string{"Origin": app}})
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Access-Control-Allow-Origin = %q with no CORS origins configured", got)
		}
	})

	t.Run("bearer endpoints answer the CORS origin", func(t *testing.T) {
		var tr httpapi.TokenResponse
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/login-mobile", json: creds}).decode(t, http.StatusOK, &tr)
		r := send(t, srv, nil, request{method: "GET", path: "/v1/auth/me", bearer: tr.AccessToken,
			header: map[string]string{"Origin": app}}).want(t, http.StatusOK)
		if got := r.header.Get("Access-Control-Allow-Origin"); got != app {
			t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, app)
		}
	})
}

// TestInternalErrorsStayInside breaks the database under the server: the
// client gets a plain 500 problem, the log gets the cause.
func TestInternalErrorsStayInside(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	}))
	u, s := newSignedInUser(t, srv)
	if err := srv.Engine.Store.Close(); err != nil {
		t.Fatal(err)
	}

	for _, rq := range []request{
		{method: "GET", path: "/v1/auth/me", bearer: s.access},
		{method: "POST", path: "/v1/auth/refresh", cookie: s.refresh},
		{method: "POST", path: "/v1/auth/login", json: map[string]string{"email": u.Email, "password": latchkeytest.DefaultPassword}},
	} {
		rq.header = map[string]string{"X-Request-ID": "broken-db-" + strconv.Itoa(len(rq.path))}
		r := send(t, srv, nil, rq)
		p := r.problem(t, http.StatusInternalServerError, "internal_error", s.access, s.refresh, latchkeytest.DefaultPassword)
		if p.Detail != "Internal error" {
			t.Errorf("%s: detail = %q, want Internal error", rq.path, p.Detail)
		}
	}
	send(t, srv, nil, request{method: "GET", path: "/health/ready"}).problem(t, http.StatusServiceUnavailable, "not_ready")
	// The liveness probe does not depend on the database.
	send(t, srv, nil, request{method: "GET", path: "/health"}).want(t, http.StatusOK)

	out := logs.String()
	if !strings.Contains(out, `"msg":"internal error"`) || !strings.Contains(out, "broken-db-") {
		t.Errorf("log does not record the internal errors with their request ids:\n%s", out)
	}
	for _, secret := range []string{s.access, s.refresh, latchkeytest.DefaultPassword} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains a token or password:\n%s", out)
		}
	}
}
