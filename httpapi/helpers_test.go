package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/httpapi"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

// strongPassword passes the password policy (8 to 128 characters, not
// easily guessed); latchkeytest.DefaultPassword does not, so it is used only
// for users made by the factory.
const strongPassword = "violet-Tractor-glacier-42"

// request is one HTTP call as a client of the service makes it.
type request struct {
	method string
	path   string
	json   any        // sent as application/json
	form   url.Values // sent as application/x-www-form-urlencoded
	raw    []byte     // sent as is, with contentType
	// contentType overrides the body's Content-Type.
	contentType string
	bearer      string            // Authorization: Bearer …
	cookie      string            // the refresh_token cookie's value
	header      map[string]string // any other headers
}

// answer is a response with its body read.
type answer struct {
	status int
	header http.Header
	body   []byte
	resp   *http.Response
}

// send makes rq against srv with client c (srv.HTTP.Client() when nil: no
// cookie jar, so the test decides which cookie goes out).
func send(tb testing.TB, srv *latchkeytest.Server, c *http.Client, rq request) *answer {
	tb.Helper()
	if c == nil {
		c = srv.HTTP.Client()
	}
	var body io.Reader
	ctype := ""
	switch {
	case rq.json != nil:
		b, err := json.Marshal(rq.json)
		if err != nil {
			tb.Fatalf("marshal request: %v", err)
		}
		body, ctype = bytes.NewReader(b), "application/json"
	case rq.form != nil:
		body, ctype = strings.NewReader(rq.form.Encode()), "application/x-www-form-urlencoded"
	case rq.raw != nil:
		body = bytes.NewReader(rq.raw)
	}
	if rq.contentType != "" {
		ctype = rq.contentType
	}
	req, err := http.NewRequestWithContext(tb.Context(), rq.method, srv.URL+rq.path, body)
	if err != nil {
		tb.Fatalf("new request %s %s: %v", rq.method, rq.path, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if rq.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+rq.bearer)
	}
	if rq.cookie != "" {
		req.AddCookie(&http.Cookie{Name: httpapi.RefreshCookie, Value: rq.cookie})
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", rq.method, rq.path, err)
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: b, resp: resp}
}

// want fails the test unless the answer has status code.
func (r *answer) want(tb testing.TB, code int) *answer {
	tb.Helper()
	if r.status != code {
		tb.Fatalf("%s %s: status = %d, want %d; body: %s", r.resp.Request.Method, r.resp.Request.URL.Path,
			r.status, code, r.body)
	}
	return r
}

// decode reads the JSON body into v after checking the status.
func (r *answer) decode(tb testing.TB, code int, v any) {
	tb.Helper()
	r.want(tb, code)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Fatalf("Content-Type = %q, want application/json", ct)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.body, err)
	}
}

// refreshCookie returns the refresh_token cookie the answer sets, or nil.
func (r *answer) refreshCookie() *http.Cookie {
	for _, c := range r.resp.Cookies() {
		if c.Name == httpapi.RefreshCookie {
			return c
		}
	}
	return nil
}

// mustRefreshCookie returns the refresh_token cookie the answer sets.
func (r *answer) mustRefreshCookie(tb testing.TB) *http.Cookie {
	tb.Helper()
	c := r.refreshCookie()
	if c == nil {
		tb.Fatalf("no %s cookie in %q", httpapi.RefreshCookie, r.header.Values("Set-Cookie"))
	}
	return c
}

// leaks are strings no error body may contain: SQL, Go stack traces and
// file names, driver names, raw refresh tokens.
var leaks = []string{"sql", "select ", "insert ", "update ", "goroutine", ".go:", "panic", "lkr_", "eyJ"}

// problem checks that the answer is an RFC 9457 problem with status and code
// and returns it. secrets are values (tokens, passwords) that must not
// appear in it.
func (r *answer) problem(tb testing.TB, status int, code string, secrets ...string) httpapi.Problem {
	tb.Helper()
	r.want(tb, status)
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p httpapi.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		tb.Fatalf("decode problem %s: %v", r.body, err)
	}
	if p.Status != status {
		tb.Errorf("problem status = %d, want %d", p.Status, status)
	}
	if p.Code != code {
		tb.Errorf("problem code = %q, want %q (detail %q)", p.Code, code, p.Detail)
	}
	if p.Detail == "" || p.Title == "" || p.Type == "" {
		tb.Errorf("problem = %+v, want type, title and detail set", p)
	}
	low := strings.ToLower(string(r.body))
	for _, s := range leaks {
		if strings.Contains(low, strings.ToLower(s)) {
			tb.Errorf("problem body %s contains %q", r.body, s)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(string(r.body), s) {
			tb.Errorf("problem body %s contains a secret the client sent", r.body)
		}
	}
	return p
}

// fieldNamed reports whether the problem names field among its errors.
func fieldNamed(p httpapi.Problem, field string) bool {
	for _, e := range p.Errors {
		if e.Field == field && e.Reason != "" {
			return true
		}
	}
	return false
}

// session is a signed-in client: its access token and refresh token
// (the cookie's value in cookie mode).
type session struct {
	access  string
	refresh string
	user    httpapi.UserJSON
}

// signIn signs in by JSON in cookie mode and returns the tokens.
func signIn(tb testing.TB, srv *latchkeytest.Server, email, password string) session {
	tb.Helper()
	r := send(tb, srv, nil, request{method: "POST", path: "/v1/auth/login",
		json: map[string]string{"email": email, "password": password}})
	var tr httpapi.TokenResponse
	r.decode(tb, http.StatusOK, &tr)
	return session{access: tr.AccessToken, refresh: r.mustRefreshCookie(tb).Value, user: *tr.User}
}

// signInMobile signs in in mobile mode and returns both tokens.
func signInMobile(tb testing.TB, srv *latchkeytest.Server, email, password string) session {
	tb.Helper()
	r := send(tb, srv, nil, request{method: "POST", path: "/v1/auth/login-mobile",
		json: map[string]string{"email": email, "password": password}})
	var tr httpapi.TokenResponse
	r.decode(tb, http.StatusOK, &tr)
	if tr.RefreshToken == "" {
		tb.Fatalf("login-mobile: no refresh_token in %s", r.body)
	}
	return session{access: tr.AccessToken, refresh: tr.RefreshToken, user: *tr.User}
}

// newSignedInUser makes a user with the factory and signs it in.
func newSignedInUser(tb testing.TB, srv *latchkeytest.Server, opts ...latchkeytest.UserOption) (*latchkey.User, session) {
	tb.Helper()
	u := latchkeytest.NewUser(tb, srv.Engine, opts...)
	return u, signIn(tb, srv, u.Email, latchkeytest.DefaultPassword)
}

// refresh presents a refresh cookie and returns the answer.
func refresh(tb testing.TB, srv *latchkeytest.Server, cookie string, header map[string]string) *answer {
	tb.Helper()
	return send(tb, srv, nil, request{method: "POST", path: "/v1/auth/refresh", cookie: cookie, header: header})
}

// me calls GET /v1/auth/me with an access token.
func me(tb testing.TB, srv *latchkeytest.Server, access string) *answer {
	tb.Helper()
	return send(tb, srv, nil, request{method: "GET", path: "/v1/auth/me", bearer: access})
}

// lockedBuffer is an io.Writer safe for the server's goroutines and the
// test to share (a log destination).
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tamper returns s with the character at i replaced by another base64url
// character, so that the result still decodes but no longer verifies.
func tamper(s string, i int) string {
	c := byte('A')
	if s[i] == c {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}
