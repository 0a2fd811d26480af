package httpapi_test

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/httpapi"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	const app = "https://app.example"
	srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) { o.CORSOrigins = []string{app} }))
	u, s := newSignedInUser(t, srv)

	for name, rq := range map[string]request{
		"login":       {method: "POST", path: "/v1/auth/login", json: map[string]string{"email": u.Email, "password": latchkeytest.DefaultPassword}},
		"me":          {method: "GET", path: "/v1/auth/me", bearer: s.access},
		"401":         {method: "GET", path: "/v1/auth/me"},
		"404":         {method: "GET", path: "/nowhere"},
		"405":         {method: "DELETE", path: "/v1/auth/login"},
		"413":         {method: "POST", path: "/v1/users", raw: make([]byte, 70<<10), contentType: "application/json"},
		"204 logout":  {method: "POST", path: "/v1/auth/logout", cookie: "lkr_nothing"},
		"preflight":   {method: "OPTIONS", path: "/v1/auth/login", header: map[string]string{"Origin": app, "Access-Control-Request-Method": "POST"}},
		"health":      {method: "GET", path: "/health"},
		"metrics":     {method: "GET", path: "/metrics"},
		"jwks":        {method: "GET", path: "/.well-known/jwks.json"},
		"openapi":     {method: "GET", path: "/openapi.json"},
		"revoke":      {method: "POST", path: "/oauth/revoke", form: url.Values{"token": {"x"}}},
		"admin 403":   {method: "GET", path: "/v1/admin/users", bearer: s.access},
		"cross-site":  {method: "POST", path: "/v1/auth/refresh", header: map[string]string{"Sec-Fetch-Site": "cross-site"}, cookie: s.refresh},
		"bad request": {method: "POST", path: "/oauth/introspect"},
	} {
		t.Run(name, func(t *testing.T) {
			r := send(t, srv, nil, rq)
			for k, want := range map[string]string{
				"X-Content-Type-Options":     "nosniff",
				"X-Frame-Options":            "DENY",
				"Referrer-Policy":            "no-referrer",
				"Content-Security-Policy":    "default-src 'none'; frame-ancestors 'none'",
				"Cross-Origin-Opener-Policy": "same-origin",
			} {
				if got := r.header.Get(k); got != want {
					t.Errorf("%s (status %d): %s = %q, want %q", name, r.status, k, got, want)
				}
			}
			if r.header.Get("X-Request-ID") == "" {
				t.Errorf("%s: no X-Request-ID", name)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t)
	// A generated id is as plain as an accepted one, so that it is safe to
	// log and to pass on.
	generated := regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

	for _, id := range []string{"abc-123", "trace_ID.42", strings.Repeat("a", 64)} {
		for _, path := range []string{"/health", "/nowhere"} {
			r := send(t, srv, nil, request{method: "GET", path: path, header: map[string]string{"X-Request-ID": id}})
			if got := r.header.Get("X-Request-ID"); got != id {
				t.Errorf("%s with X-Request-ID %q: echoed %q", path, id, got)
			}
		}
	}

	seen := map[string]bool{}
	for _, id := range []string{"", "has space", "<script>", `quote"d`, strings.Repeat("a", 65), "ümlaut"} {
		r := send(t, srv, nil, request{method: "GET", path: "/health", header: map[string]string{"X-Request-ID": id}})
		got := r.header.Get("X-Request-ID")
		if !generated.MatchString(got) || got == id {
			t.Errorf("X-Request-ID %q: answered %q, want a generated id", id, got)
		}
		if seen[got] {
			t.Errorf("generated id %q twice", got)
		}
		seen[got] = true
	}
}

// metricValue returns the value of the sample of metric whose labels
// contain each of labels (`name="value"`), and whether there is one.
func metricValue(tb testing.TB, text, metric string, labels ...string) (float64, bool) {
	tb.Helper()
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		lbl := ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			name, lbl, rest = line[:i], line[i+1:j], strings.TrimSpace(line[j+1:])
		}
		if name != metric {
			continue
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(lbl, l) {
				match = false
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			tb.Fatalf("metric line %q: %v", line, err)
		}
		return v, true
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) {
		o.Limits = httpapi.Limits{RegisterPerIP: httpapi.Rate{PerMinute: 1, Burst: 1}}
	}))
	u, s := newSignedInUser(t, srv) // one sign-in
	send(t, srv, nil, request{method: "POST", path: "/v1/auth/login",
		json: map[string]string{"email": u.Email, "password": "WrongPass123"}}).want(t, http.StatusUnauthorized)
	next := refresh(t, srv, s.refresh, nil).want(t, http.StatusOK).mustRefreshCookie(t).Value
	srv.Engine.Clock.Advance(grace + time.Second)
	refresh(t, srv, s.refresh, nil).want(t, http.StatusUnauthorized) // reuse
	refresh(t, srv, next, nil).want(t, http.StatusUnauthorized)      // revoked
	send(t, srv, nil, request{method: "GET", path: "/this/path/is/not/a/route"}).want(t, http.StatusNotFound)
	register(t, srv, "m1@test.example", strongPassword, "").want(t, http.StatusCreated)
	register(t, srv, "m2@test.example", strongPassword, "").want(t, http.StatusTooManyRequests)

	r := send(t, srv, nil, request{method: "GET", path: "/metrics"}).want(t, http.StatusOK)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") && !strings.Contains(ct, "openmetrics") {
		t.Errorf("Content-Type = %q, want the Prometheus text format", ct)
	}
	text := string(r.body)

	for _, tc := range []struct {
		metric string
		labels []string
		want   float64
	}{
		{"latchkey_http_requests_total", []string{`route="POST /v1/auth/login"`, `code="200"`}, 1},
		{"latchkey_http_requests_total", []string{`route="POST /v1/auth/login"`, `code="401"`}, 1},
		{"latchkey_http_requests_total", []string{`route="POST /v1/auth/refresh"`, `code="401"`}, 2},
		{"latchkey_http_requests_total", []string{`route="unmatched"`, `code="404"`}, 1},
		{"latchkey_http_request_duration_seconds_count", []string{`route="POST /v1/auth/refresh"`}, 3},
		{"latchkey_http_request_duration_seconds_bucket", []string{`route="POST /v1/auth/refresh"`, `le="+Inf"`}, 3},
		{"latchkey_sign_ins_total", []string{`result="success"`}, 1},
		{"latchkey_sign_ins_total", []string{`result="failure"`}, 1},
		{"latchkey_refreshes_total", []string{`outcome="rotated"`}, 1},
		{"latchkey_refreshes_total", []string{`outcome="token_reused"`}, 1},
		{"latchkey_refreshes_total", []string{`outcome="token_revoked"`}, 1},
		{"latchkey_reuse_detections_total", nil, 1},
		{"latchkey_rate_limited_total", []string{`limit="register_ip"`}, 1},
		{"latchkey_password_hash_queue_depth", nil, 0},
	} {
		got, ok := metricValue(t, text, tc.metric, tc.labels...)
		if !ok {
			t.Errorf("no %s%v in /metrics", tc.metric, tc.labels)
			continue
		}
		if got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.metric, tc.labels, got, tc.want)
		}
	}
	// Routes are labelled by pattern, so that clients cannot grow the label
	// set by inventing paths or ids.
	if strings.Contains(text, "/this/path/is/not/a/route") {
		t.Error("/metrics labels an unmatched path by its text")
	}
	if strings.Contains(text, s.refresh) || strings.Contains(text, u.Email) {
		t.Error("/metrics shows a token or an email")
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t)

	var body map[string]string
	send(t, srv, nil, request{method: "GET", path: "/health"}).decode(t, http.StatusOK, &body)
	if body["status"] != "ok" {
		t.Errorf("/health = %v, want status ok", body)
	}

	// Ready needs the store and a clock that agrees with the database's.
	srv.Engine.Clock.Set(time.Now())
	send(t, srv, nil, request{method: "GET", path: "/health/ready"}).decode(t, http.StatusOK, &body)
	if body["status"] != "ready" {
		t.Errorf("/health/ready = %v, want status ready", body)
	}

	srv.Engine.Clock.Set(time.Now().Add(-time.Minute))
	r := send(t, srv, nil, request{method: "GET", path: "/health/ready"})
	r.problem(t, http.StatusServiceUnavailable, "clock_skew")
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	}))
	u := latchkeytest.NewUser(t, srv.Engine)
	r := send(t, srv, nil, request{method: "POST", path: "/v1/auth/login", header: map[string]string{"X-Request-ID": "req-login-1"},
		form: url.Values{"username": {u.Email}, "password": {latchkeytest.DefaultPassword}}})
	var tr httpapi.TokenResponse
	r.decode(t, http.StatusOK, &tr)
	cookie := r.mustRefreshCookie(t).Value
	send(t, srv, nil, request{method: "GET", path: "/v1/auth/me", bearer: tr.AccessToken,
		header: map[string]string{"X-Request-ID": "req-me-1"}}).want(t, http.StatusOK)
	send(t, srv, nil, request{method: "POST", path: "/v1/auth/refresh", cookie: cookie + "x",
		header: map[string]string{"X-Request-ID": "req-refresh-1"}}).want(t, http.StatusUnauthorized)

	lines := map[string]map[string]any{}
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		if m["msg"] == "request" {
			id, _ := m["request_id"].(string)
			lines[id] = m
		}
	}
	login, mine, ref := lines["req-login-1"], lines["req-me-1"], lines["req-refresh-1"]
	if login == nil || mine == nil || ref == nil {
		t.Fatalf("request log lines = %v, want one per request id", lines)
	}
	if login["route"] != "POST /v1/auth/login" || login["status"] != float64(200) || login["method"] != "POST" {
		t.Errorf("login log = %v", login)
	}
	if mine["user_id"] != u.ID.String() {
		t.Errorf("me log user_id = %v, want %s", mine["user_id"], u.ID)
	}
	if ref["status"] != float64(401) || ref["code"] != "invalid_token" {
		t.Errorf("refresh log = %v, want status 401, code invalid_token", ref)
	}
	out := logs.String()
	for _, secret := range []string{tr.AccessToken, cookie, latchkeytest.DefaultPassword, "lkr_"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains a token or password:\n%s", out)
		}
	}
}
