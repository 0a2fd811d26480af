package httpapi_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/httpapi"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

const (
	accessTTL  = 15 * time.Minute
	idleTTL    = 7 * 24 * time.Hour
	sessionAge = 30 * 24 * time.Hour
	grace      = 10 * time.Second
)

func TestLogin(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t)
	u := latchkeytest.NewUser(t, srv.Engine, latchkeytest.FullName("Ada Lovelace"))
	inactive := latchkeytest.NewUser(t, srv.Engine, latchkeytest.Inactive())

	success := map[string]request{
		// The original service's OAuth2 password form.
		"form": {method: "POST", path: "/v1/auth/login",
			form: url.Values{"username": {u.Email}, "password": {latchkeytest.DefaultPassword}}},
		"json": {method: "POST", path: "/v1/auth/login",
			json: map[string]string{"email": u.Email, "password": latchkeytest.DefaultPassword}},
		"json with upper-case email": {method: "POST", path: "/v1/auth/login",
			json: map[string]string{"email": strings.ToUpper(u.Email), "password": latchkeytest.DefaultPassword}},
	}
	for name, rq := range success {
		t.Run(name, func(t *testing.T) {
			r := send(t, srv, nil, rq)
			var tr httpapi.TokenResponse
			r.decode(t, http.StatusOK, &tr)
			if tr.TokenType != "bearer" {
				t.Errorf("token_type = %q, want bearer", tr.TokenType)
			}
			if got, want := tr.ExpiresIn, int64(accessTTL.Seconds()); got != want {
				t.Errorf("expires_in = %d, want %d", got, want)
			}
			if tr.AccessToken == "" {
				t.Fatal("no access_token")
			}
			if tr.RefreshToken != "" {
				t.Error("cookie-mode login put the refresh token in the body")
			}
			if tr.User == nil || tr.User.ID != u.ID || tr.User.Email != u.Email || tr.User.FullName != "Ada Lovelace" ||
				tr.User.Role != latchkey.RoleUser || !tr.User.IsActive {
				t.Errorf("user = %+v, want %s (%s, Ada Lovelace, user, active)", tr.User, u.ID, u.Email)
			}
			if cc := r.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
			r.mustRefreshCookie(t)
			me(t, srv, tr.AccessToken).want(t, http.StatusOK)
		})
	}

	failure := map[string]request{
		"wrong password": {method: "POST", path: "/v1/auth/login",
			json: map[string]string{"email": u.Email, "password": "WrongPass123"}},
		"wrong password form": {method: "POST", path: "/v1/auth/login",
			form: url.Values{"username": {u.Email}, "password": {"WrongPass123"}}},
		"unknown email": {method: "POST", path: "/v1/auth/login",
			json: map[string]string{"email": "nobody@test.example", "password": latchkeytest.DefaultPassword}},
		"inactive user": {method: "POST", path: "/v1/auth/login",
			json: map[string]string{"email": inactive.Email, "password": latchkeytest.DefaultPassword}},
	}
	var details []string
	for _, name := range []string{"wrong password", "wrong password form", "unknown email", "inactive user"} {
		t.Run(name, func(t *testing.T) {
			r := send(t, srv, nil, failure[name])
			p := r.problem(t, http.StatusUnauthorized, "invalid_credentials", "WrongPass123", latchkeytest.DefaultPassword)
			if r.refreshCookie() != nil {
				t.Error("a failed sign-in set a refresh cookie")
			}
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want Bearer …", r.header.Get("WWW-Authenticate"))
			}
			details = append(details, p.Detail)
		})
	}
	// An attacker must not learn which accounts exist or are inactive.
	for _, d := range details[1:] {
		if d != details[0] {
			t.Errorf("failed sign-in details differ: %q", details)
			break
		}
	}

	t.Run("missing fields", func(t *testing.T) {
		for field, rq := range map[string]request{
			"username": {method: "POST", path: "/v1/auth/login", form: url.Values{"password": {"x"}}},
			"password": {method: "POST", path: "/v1/auth/login", json: map[string]string{"email": u.Email}},
		} {
			p := send(t, srv, nil, rq).problem(t, http.StatusUnprocessableEntity, "validation_failed")
			if !fieldNamed(p, field) {
				t.Errorf("errors = %+v, want %s named", p.Errors, field)
			}
		}
	})
	t.Run("unsupported content type", func(t *testing.T) {
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/login", raw: []byte("x"), contentType: "text/plain"}).
			problem(t, http.StatusUnsupportedMediaType, "unsupported_media_type")
	})
}

func TestLoginCookieAttributes(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, c *http.Cookie, wantSecure bool, wantMaxAge int) {
		t.Helper()
		if !c.HttpOnly {
			t.Error("cookie is not HttpOnly")
		}
		if c.SameSite != http.SameSiteStrictMode {
			t.Errorf("SameSite = %v, want Strict", c.SameSite)
		}
		if c.Path != "/v1/auth" {
			t.Errorf("Path = %q, want /v1/auth", c.Path)
		}
		if c.MaxAge != wantMaxAge {
			t.Errorf("Max-Age = %d, want %d", c.MaxAge, wantMaxAge)
		}
		if c.Secure != wantSecure {
			t.Errorf("Secure = %v, want %v", c.Secure, wantSecure)
		}
		if !strings.HasPrefix(c.Value, "lkr_") {
			t.Errorf("cookie value %q is not a refresh token", c.Value)
		}
	}

	t.Run("dev mode on loopback", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		u := latchkeytest.NewUser(t, srv.Engine)
		r := send(t, srv, nil, request{method: "POST", path: "/v1/auth/login",
			form: url.Values{"username": {u.Email}, "password": {latchkeytest.DefaultPassword}}})
		check(t, r.want(t, http.StatusOK).mustRefreshCookie(t), false, int(idleTTL.Seconds()))
	})
	t.Run("production", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) { o.Dev = false }))
		u := latchkeytest.NewUser(t, srv.Engine)
		r := send(t, srv, nil, request{method: "POST", path: "/v1/auth/login",
			json: map[string]string{"email": u.Email, "password": latchkeytest.DefaultPassword}})
		c := r.want(t, http.StatusOK).mustRefreshCookie(t)
		check(t, c, true, int(idleTTL.Seconds()))

		// The rotated cookie and the cleared one keep the attributes.
		r = refresh(t, srv, c.Value, nil)
		check(t, r.want(t, http.StatusOK).mustRefreshCookie(t), true, int(idleTTL.Seconds()))
		r = send(t, srv, nil, request{method: "POST", path: "/v1/auth/logout", cookie: r.mustRefreshCookie(t).Value})
		cleared := r.want(t, http.StatusNoContent).mustRefreshCookie(t)
		if !cleared.Secure || !cleared.HttpOnly || cleared.Path != "/v1/auth" || cleared.MaxAge >= 0 {
			t.Errorf("cleared cookie = %+v, want Secure, HttpOnly, Path=/v1/auth, expired", cleared)
		}
	})
	t.Run("dev mode on a non-loopback address", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		u := latchkeytest.NewUser(t, srv.Engine)
		// A dev server reached over the network must still send Secure:
		// the exemption is for plain http://localhost only.
		req := httptest.NewRequest("POST", "http://10.1.2.3:8080/v1/auth/login",
			strings.NewReader(url.Values{"username": {u.Email}, "password": {latchkeytest.DefaultPassword}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey,
			&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8080}))
		rec := httptest.NewRecorder()
		srv.API.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
		}
		var c *http.Cookie
		for _, x := range rec.Result().Cookies() {
			if x.Name == httpapi.RefreshCookie {
				c = x
			}
		}
		if c == nil {
			t.Fatal("no refresh cookie")
		}
		check(t, c, true, int(idleTTL.Seconds()))
	})
	t.Run("max age follows the idle deadline, capped by the session's age", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		_, s := newSignedInUser(t, srv)
		cookie := s.refresh
		// Refresh every 6 days: each rotation renews the idle deadline until
		// the absolute deadline (30 days from sign-in) caps it.
		day := 24 * time.Hour
		for _, d := range []time.Duration{6 * day, 12 * day, 18 * day, 24 * day} {
			srv.Engine.Clock.Advance(6 * day)
			c := refresh(t, srv, cookie, nil).want(t, http.StatusOK).mustRefreshCookie(t)
			want := min(idleTTL, sessionAge-d)
			if got := c.MaxAge; got != int(want.Seconds()) {
				t.Errorf("day %d: Max-Age = %d, want %d", d/day, got, int(want.Seconds()))
			}
			cookie = c.Value
		}
		srv.Engine.Clock.Advance(5*24*time.Hour + 12*time.Hour) // day 29.5
		c := refresh(t, srv, cookie, nil).want(t, http.StatusOK).mustRefreshCookie(t)
		if got, want := c.MaxAge, int((12 * time.Hour).Seconds()); got != want {
			t.Errorf("day 29.5: Max-Age = %d, want %d (the absolute deadline)", got, want)
		}
		srv.Engine.Clock.Advance(12 * time.Hour)
		refresh(t, srv, c.Value, nil).problem(t, http.StatusUnauthorized, "token_expired", c.Value)
	})
}

func TestLogout(t *testing.T) {
	t.Parallel()

	t.Run("success", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		u := latchkeytest.NewUser(t, srv.Engine)
		browser := srv.Client()
		r := send(t, srv, browser, request{method: "POST", path: "/v1/auth/login",
			json: map[string]string{"email": u.Email, "password": latchkeytest.DefaultPassword}})
		var tr httpapi.TokenResponse
		r.decode(t, http.StatusOK, &tr)
		cookie := r.mustRefreshCookie(t).Value

		r = send(t, srv, browser, request{method: "POST", path: "/v1/auth/logout"}).want(t, http.StatusNoContent)
		if len(r.body) != 0 {
			t.Errorf("logout body = %q, want none", r.body)
		}
		if c := r.mustRefreshCookie(t); c.Value != "" || c.MaxAge >= 0 || c.Path != "/v1/auth" {
			t.Errorf("logout cookie = %+v, want it cleared on /v1/auth", c)
		}
		// The browser forgot the cookie, and the session is over for
		// anyone who kept a copy.
		send(t, srv, browser, request{method: "POST", path: "/v1/auth/refresh"}).
			problem(t, http.StatusUnauthorized, "missing_refresh_token")
		refresh(t, srv, cookie, nil).problem(t, http.StatusUnauthorized, "token_revoked", cookie)
		me(t, srv, tr.AccessToken).problem(t, http.StatusUnauthorized, "token_revoked")
	})

	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/logout"}).
			problem(t, http.StatusUnauthorized, "missing_refresh_token")
	})

	t.Run("a token that does not verify changes nothing", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		_, s := newSignedInUser(t, srv)
		forged := tamper(s.refresh, 40)
		for _, tok := range []string{"garbage", forged} {
			send(t, srv, nil, request{method: "POST", path: "/v1/auth/logout", cookie: tok}).want(t, http.StatusNoContent)
		}
		refresh(t, srv, s.refresh, nil).want(t, http.StatusOK)
	})

	t.Run("twice", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		_, s := newSignedInUser(t, srv)
		for range 2 {
			send(t, srv, nil, request{method: "POST", path: "/v1/auth/logout", cookie: s.refresh}).want(t, http.StatusNoContent)
		}
	})

	t.Run("mobile", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		u := latchkeytest.NewUser(t, srv.Engine)
		s := signInMobile(t, srv, u.Email, latchkeytest.DefaultPassword)
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/logout",
			json: map[string]string{"refresh_token": s.refresh}}).want(t, http.StatusNoContent)
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/refresh-mobile",
			json: map[string]string{"refresh_token": s.refresh}}).problem(t, http.StatusUnauthorized, "token_revoked")
	})

	t.Run("other sessions stay", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		u, a := newSignedInUser(t, srv)
		b := signIn(t, srv, u.Email, latchkeytest.DefaultPassword)
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/logout", cookie: a.refresh}).want(t, http.StatusNoContent)
		refresh(t, srv, b.refresh, nil).want(t, http.StatusOK)
		me(t, srv, b.access).want(t, http.StatusOK)
	})
}

func TestLogoutAll(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t)
	u, a := newSignedInUser(t, srv)
	b := signIn(t, srv, u.Email, latchkeytest.DefaultPassword)
	m := signInMobile(t, srv, u.Email, latchkeytest.DefaultPassword)
	_, bystander := newSignedInUser(t, srv)

	send(t, srv, nil, request{method: "POST", path: "/v1/auth/logout-all"}).problem(t, http.StatusUnauthorized, "not_authenticated")

	r := send(t, srv, nil, request{method: "POST", path: "/v1/auth/logout-all", bearer: a.access})
	var got map[string]int
	r.decode(t, http.StatusOK, &got)
	if got["revoked_sessions"] != 3 {
		t.Errorf("revoked_sessions = %d, want 3 (body %s)", got["revoked_sessions"], r.body)
	}
	if c := r.refreshCookie(); c == nil || c.MaxAge >= 0 {
		t.Errorf("cookie = %v, want it cleared", c)
	}
	for _, s := range []session{a, b} {
		refresh(t, srv, s.refresh, nil).problem(t, http.StatusUnauthorized, "token_revoked")
		me(t, srv, s.access).want(t, http.StatusUnauthorized)
	}
	send(t, srv, nil, request{method: "POST", path: "/v1/auth/refresh-mobile",
		json: map[string]string{"refresh_token": m.refresh}}).problem(t, http.StatusUnauthorized, "token_revoked")
	// Another user's sessions are untouched.
	me(t, srv, bystander.access).want(t, http.StatusOK)
	refresh(t, srv, bystander.refresh, nil).want(t, http.StatusOK)
	// Signing in again works.
	signIn(t, srv, u.Email, latchkeytest.DefaultPassword)
}

func TestMe(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t)
	u, s := newSignedInUser(t, srv, latchkeytest.FullName("Grace Hopper"), latchkeytest.Unverified())

	t.Run("authenticated", func(t *testing.T) {
		r := me(t, srv, s.access)
		var got map[string]any
		r.decode(t, http.StatusOK, &got)
		for _, f := range []string{"id", "email", "full_name", "role", "is_active", "is_verified", "created_at"} {
			if _, ok := got[f]; !ok {
				t.Errorf("me has no %q: %s", f, r.body)
			}
		}
		if got["id"] != u.ID.String() || got["email"] != u.Email || got["full_name"] != "Grace Hopper" ||
			got["role"] != "user" || got["is_active"] != true || got["is_verified"] != false {
			t.Errorf("me = %s, want %s %s Grace Hopper user active unverified", r.body, u.ID, u.Email)
		}
		if _, ok := got["password_hash"]; ok {
			t.Error("me shows the password hash")
		}
		for k := range got {
			if strings.Contains(strings.ToLower(k), "password") {
				t.Errorf("me shows %q", k)
			}
		}
	})

	t.Run("unauthenticated", func(t *testing.T) {
		r := send(t, srv, nil, request{method: "GET", path: "/v1/auth/me"})
		r.problem(t, http.StatusUnauthorized, "not_authenticated")
		if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("WWW-Authenticate = %q, want Bearer …", got)
		}
	})

	t.Run("not a bearer token", func(t *testing.T) {
		for _, h := range []string{"Basic dXNlcjpwYXNz", "Bearer", "Bearer ", s.access} {
			send(t, srv, nil, request{method: "GET", path: "/v1/auth/me", header: map[string]string{"Authorization": h}}).
				problem(t, http.StatusUnauthorized, "not_authenticated")
		}
	})

	t.Run("invalid token", func(t *testing.T) {
		for _, tok := range []string{"garbage", tamper(s.access, strings.LastIndexByte(s.access, '.')+5), s.refresh} {
			r := me(t, srv, tok)
			r.problem(t, http.StatusUnauthorized, "invalid_token", tok)
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want Bearer …", got)
			}
		}
	})

	t.Run("expired token", func(t *testing.T) {
		srv := latchkeytest.NewServer(t)
		_, s := newSignedInUser(t, srv)
		srv.Engine.Clock.Advance(accessTTL + time.Minute)
		me(t, srv, s.access).problem(t, http.StatusUnauthorized, "token_expired")
	})

	t.Run("case-insensitive scheme", func(t *testing.T) {
		send(t, srv, nil, request{method: "GET", path: "/v1/auth/me",
			header: map[string]string{"Authorization": "bearer " + s.access}}).want(t, http.StatusOK)
	})
}

func TestChangePassword(t *testing.T) {
	t.Parallel()

	t.Run("success", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		u, mine := newSignedInUser(t, srv)
		other := signIn(t, srv, u.Email, latchkeytest.DefaultPassword)
		phone := signInMobile(t, srv, u.Email, latchkeytest.DefaultPassword)

		r := send(t, srv, nil, request{method: "POST", path: "/v1/auth/change-password", bearer: mine.access,
			json: map[string]string{"current_password": latchkeytest.DefaultPassword, "new_password": strongPassword}})
		r.want(t, http.StatusNoContent)

		// The other sessions end.
		refresh(t, srv, other.refresh, nil).problem(t, http.StatusUnauthorized, "token_revoked")
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/refresh-mobile",
			json: map[string]string{"refresh_token": phone.refresh}}).problem(t, http.StatusUnauthorized, "token_revoked")
		me(t, srv, other.access).want(t, http.StatusUnauthorized)
		// The caller's own session stays: its refresh token still works.
		r = refresh(t, srv, mine.refresh, nil)
		var tr httpapi.TokenResponse
		r.decode(t, http.StatusOK, &tr)
		me(t, srv, tr.AccessToken).want(t, http.StatusOK)
		// The old password no longer signs in; the new one does.
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/login",
			json: map[string]string{"email": u.Email, "password": latchkeytest.DefaultPassword}}).
			problem(t, http.StatusUnauthorized, "invalid_credentials")
		signIn(t, srv, u.Email, strongPassword)
	})

	t.Run("wrong current password", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		u, mine := newSignedInUser(t, srv)
		other := signIn(t, srv, u.Email, latchkeytest.DefaultPassword)
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/change-password", bearer: mine.access,
			json: map[string]string{"current_password": "WrongPass123", "new_password": strongPassword}}).
			problem(t, http.StatusUnauthorized, "invalid_credentials", strongPassword, "WrongPass123")
		// Nothing changed.
		refresh(t, srv, other.refresh, nil).want(t, http.StatusOK)
		signIn(t, srv, u.Email, latchkeytest.DefaultPassword)
	})

	t.Run("invalid new password", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		_, mine := newSignedInUser(t, srv)
		for _, pw := range []string{"short1", strings.Repeat("x9!Q", 33), "password123"} {
			p := send(t, srv, nil, request{method: "POST", path: "/v1/auth/change-password", bearer: mine.access,
				json: map[string]string{"current_password": latchkeytest.DefaultPassword, "new_password": pw}}).
				want(t, http.StatusUnprocessableEntity).problem(t, http.StatusUnprocessableEntity, problemCode(t, pw), pw)
			if !fieldNamed(p, "new_password") {
				t.Errorf("errors = %+v, want new_password named (the field the client sent)", p.Errors)
			}
		}
	})

	t.Run("missing current password", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		_, mine := newSignedInUser(t, srv)
		p := send(t, srv, nil, request{method: "POST", path: "/v1/auth/change-password", bearer: mine.access,
			json: map[string]string{"new_password": strongPassword}}).problem(t, http.StatusUnprocessableEntity, "validation_failed")
		if !fieldNamed(p, "current_password") {
			t.Errorf("errors = %+v, want current_password named", p.Errors)
		}
	})

	t.Run("unauthenticated", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/change-password",
			json: map[string]string{"current_password": "a", "new_password": strongPassword}}).
			problem(t, http.StatusUnauthorized, "not_authenticated")
	})
}

// problemCode is the code a password refused by the policy gets: too short
// or too long is a validation failure, guessable is weak_password.
func problemCode(t *testing.T, pw string) string {
	t.Helper()
	if n := len([]rune(pw)); n < 8 || n > 128 {
		return "validation_failed"
	}
	return "weak_password"
}
