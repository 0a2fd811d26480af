package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/httpapi"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

func TestRefresh(t *testing.T) {
	t.Parallel()

	t.Run("success", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		u := latchkeytest.NewUser(t, srv.Engine)
		browser := srv.Client()
		r := send(t, srv, browser, request{method: "POST", path: "/v1/auth/login",
			form: url.Values{"username": {u.Email}, "password": {latchkeytest.DefaultPassword}}})
		first := r.want(t, http.StatusOK).mustRefreshCookie(t).Value

		srv.Engine.Clock.Advance(time.Minute)
		r = send(t, srv, browser, request{method: "POST", path: "/v1/auth/refresh"})
		var tr httpapi.TokenResponse
		r.decode(t, http.StatusOK, &tr)
		if tr.TokenType != "bearer" || tr.AccessToken == "" || tr.ExpiresIn != int64(accessTTL.Seconds()) {
			t.Errorf("refresh = %+v, want a bearer access token for %s", tr, accessTTL)
		}
		if tr.RefreshToken != "" {
			t.Error("cookie-mode refresh put the refresh token in the body")
		}
		second := r.mustRefreshCookie(t).Value
		if second == first {
			t.Error("refresh did not rotate the cookie")
		}
		var got httpapi.UserJSON
		me(t, srv, tr.AccessToken).decode(t, http.StatusOK, &got)
		if got.ID != u.ID {
			t.Errorf("me = %s, want %s", got.ID, u.ID)
		}
		// The browser's jar now holds the rotated cookie, and it works.
		srv.Engine.Clock.Advance(time.Minute)
		send(t, srv, browser, request{method: "POST", path: "/v1/auth/refresh"}).want(t, http.StatusOK)
	})

	t.Run("missing cookie", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		// 401 as the original service answered, not FastAPI's 422.
		refresh(t, srv, "", nil).problem(t, http.StatusUnauthorized, "missing_refresh_token")
	})

	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		u := latchkeytest.NewUser(t, srv.Engine)
		_, raw := latchkeytest.NewRefreshToken(t, srv.Engine, u, latchkeytest.ExpiresIn(-24*time.Hour))
		r := refresh(t, srv, raw, nil)
		r.problem(t, http.StatusUnauthorized, "token_expired", raw)
		if c := r.refreshCookie(); c == nil || c.MaxAge >= 0 {
			t.Errorf("cookie = %v, want the dead cookie cleared", c)
		}
	})

	t.Run("expired by the clock", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		_, s := newSignedInUser(t, srv)
		srv.Engine.Clock.Advance(idleTTL + time.Second)
		refresh(t, srv, s.refresh, nil).problem(t, http.StatusUnauthorized, "token_expired", s.refresh)
	})

	t.Run("revoked", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		u := latchkeytest.NewUser(t, srv.Engine)
		_, raw := latchkeytest.NewRefreshToken(t, srv.Engine, u, latchkeytest.Revoked())
		refresh(t, srv, raw, nil).problem(t, http.StatusUnauthorized, "token_revoked", raw)
	})

	t.Run("not a token", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		_, s := newSignedInUser(t, srv)
		// One character of the secret changed: the tag no longer matches.
		forged := tamper(s.refresh, 40)
		for _, tok := range []string{"garbage", "lkr_" + strings.Repeat("A", 100), forged} {
			refresh(t, srv, tok, nil).problem(t, http.StatusUnauthorized, "invalid_token", tok)
		}
		// Nothing changed: the real token still works.
		refresh(t, srv, s.refresh, nil).want(t, http.StatusOK)
	})

	t.Run("inactive user", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		u := latchkeytest.NewUser(t, srv.Engine)
		_, raw := latchkeytest.NewRefreshToken(t, srv.Engine, u)
		if _, err := srv.Engine.SetActive(t.Context(), u.ID, false); err != nil {
			t.Fatal(err)
		}
		r := refresh(t, srv, raw, nil)
		r.want(t, http.StatusUnauthorized)
		// Deactivation ends the session; either answer tells the client to
		// sign in again, and neither says more.
		var p httpapi.Problem
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatalf("decode %s: %v", r.body, err)
		}
		if p.Code != "token_revoked" && p.Code != "user_inactive" {
			t.Errorf("code = %q, want token_revoked or user_inactive", p.Code)
		}
	})

	t.Run("reuse ends the session", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		_, s := newSignedInUser(t, srv)
		old := s.refresh
		newest := refresh(t, srv, old, nil).want(t, http.StatusOK).mustRefreshCookie(t).Value

		srv.Engine.Clock.Advance(grace + time.Second)
		r := refresh(t, srv, old, nil)
		r.problem(t, http.StatusUnauthorized, "token_reused", old)
		if c := r.refreshCookie(); c == nil || c.MaxAge >= 0 {
			t.Errorf("cookie = %v, want it cleared", c)
		}
		// The thief cannot tell which cookie is the owner's: both are dead.
		refresh(t, srv, newest, nil).problem(t, http.StatusUnauthorized, "token_revoked", newest)
		// And the session's access token stops working at once.
		me(t, srv, s.access).problem(t, http.StatusUnauthorized, "token_revoked")
	})

	t.Run("reuse of a factory's spent token", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		u := latchkeytest.NewUser(t, srv.Engine)
		sess, current := latchkeytest.NewRefreshToken(t, srv.Engine, u, latchkeytest.Rotated(3))
		spent := latchkeytest.SpentTokens(t, srv.Engine, sess)
		refresh(t, srv, spent[0], nil).problem(t, http.StatusUnauthorized, "token_reused")
		refresh(t, srv, current, nil).problem(t, http.StatusUnauthorized, "token_revoked")
	})

	t.Run("retry inside the grace window", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		_, s := newSignedInUser(t, srv)
		first := refresh(t, srv, s.refresh, nil).want(t, http.StatusOK).mustRefreshCookie(t).Value

		// The response was lost; the browser retries with the old cookie.
		srv.Engine.Clock.Advance(grace / 2)
		r := refresh(t, srv, s.refresh, nil)
		var tr httpapi.TokenResponse
		r.decode(t, http.StatusOK, &tr)
		if again := r.mustRefreshCookie(t).Value; again != first {
			t.Error("a retry inside the grace window got a different cookie")
		}
		me(t, srv, tr.AccessToken).want(t, http.StatusOK)
		// The session goes on from that cookie.
		srv.Engine.Clock.Advance(time.Minute)
		refresh(t, srv, first, nil).want(t, http.StatusOK)
	})

	t.Run("another browser inside the grace window is reuse", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		_, s := newSignedInUser(t, srv)
		owner := map[string]string{"User-Agent": "OwnerBrowser/1.0"}
		newest := refresh(t, srv, s.refresh, owner).want(t, http.StatusOK).mustRefreshCookie(t).Value
		srv.Engine.Clock.Advance(time.Second)
		refresh(t, srv, s.refresh, map[string]string{"User-Agent": "ThiefBrowser/2.0"}).
			problem(t, http.StatusUnauthorized, "token_reused")
		refresh(t, srv, newest, owner).problem(t, http.StatusUnauthorized, "token_revoked")
	})

	t.Run("concurrent tabs converge on one cookie", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		_, s := newSignedInUser(t, srv)
		const tabs = 8
		start := make(chan struct{})
		var wg sync.WaitGroup
		got := make([]*http.Response, tabs)
		errs := make([]error, tabs)
		for i := range tabs {
			wg.Go(func() {
				req, _ := http.NewRequest("POST", srv.URL+"/v1/auth/refresh", nil)
				req.AddCookie(&http.Cookie{Name: httpapi.RefreshCookie, Value: s.refresh})
				<-start
				resp, err := srv.HTTP.Client().Do(req)
				if err == nil {
					resp.Body.Close()
				}
				got[i], errs[i] = resp, err
			})
		}
		close(start)
		wg.Wait()
		var cookie string
		for i, resp := range got {
			if errs[i] != nil {
				t.Fatalf("tab %d: %v", i, errs[i])
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("tab %d: status = %d, want 200", i, resp.StatusCode)
			}
			var c string
			for _, x := range resp.Cookies() {
				if x.Name == httpapi.RefreshCookie {
					c = x.Value
				}
			}
			if cookie == "" {
				cookie = c
			}
			if c != cookie {
				t.Errorf("tab %d got a different cookie", i)
			}
		}
		srv.Engine.Clock.Advance(grace + time.Second)
		refresh(t, srv, cookie, nil).want(t, http.StatusOK)
	})
}

func TestMobile(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t)
	u := latchkeytest.NewUser(t, srv.Engine)

	t.Run("login and refresh", func(t *testing.T) {
		r := send(t, srv, nil, request{method: "POST", path: "/v1/auth/login-mobile",
			json: map[string]string{"email": u.Email, "password": latchkeytest.DefaultPassword, "device_name": "Pixel 9"}})
		var tr httpapi.TokenResponse
		r.decode(t, http.StatusOK, &tr)
		if tr.AccessToken == "" || !strings.HasPrefix(tr.RefreshToken, "lkr_") || tr.TokenType != "bearer" {
			t.Fatalf("login-mobile = %s, want access_token, refresh_token and token_type bearer", r.body)
		}
		if got, want := tr.RefreshExpiresIn, int64(idleTTL.Seconds()); got != want {
			t.Errorf("refresh_expires_in = %d, want %d", got, want)
		}
		if tr.User == nil || tr.User.ID != u.ID {
			t.Errorf("user = %+v, want %s", tr.User, u.ID)
		}
		if r.refreshCookie() != nil {
			t.Error("mobile login set a cookie")
		}

		r = send(t, srv, nil, request{method: "POST", path: "/v1/auth/refresh-mobile",
			json: map[string]string{"refresh_token": tr.RefreshToken}})
		var next httpapi.TokenResponse
		r.decode(t, http.StatusOK, &next)
		if next.AccessToken == "" || next.RefreshToken == "" || next.RefreshToken == tr.RefreshToken {
			t.Fatalf("refresh-mobile = %s, want both tokens, rotated", r.body)
		}
		me(t, srv, next.AccessToken).want(t, http.StatusOK)

		// Reuse ends the session in mobile mode too.
		srv.Engine.Clock.Advance(grace + time.Second)
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/refresh-mobile",
			json: map[string]string{"refresh_token": tr.RefreshToken}}).problem(t, http.StatusUnauthorized, "token_reused", tr.RefreshToken)
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/refresh-mobile",
			json: map[string]string{"refresh_token": next.RefreshToken}}).problem(t, http.StatusUnauthorized, "token_revoked")
	})

	t.Run("form login", func(t *testing.T) {
		s := send(t, srv, nil, request{method: "POST", path: "/v1/auth/login-mobile",
			form: url.Values{"username": {u.Email}, "password": {latchkeytest.DefaultPassword}}})
		var tr httpapi.TokenResponse
		s.decode(t, http.StatusOK, &tr)
		if tr.RefreshToken == "" {
			t.Errorf("login-mobile = %s, want a refresh_token", s.body)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/login-mobile",
			json: map[string]string{"email": u.Email, "password": "WrongPass123"}}).problem(t, http.StatusUnauthorized, "invalid_credentials")
	})

	t.Run("a cookie session's token is refused by refresh-mobile", func(t *testing.T) {
		s := signIn(t, srv, u.Email, latchkeytest.DefaultPassword)
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/refresh-mobile",
			json: map[string]string{"refresh_token": s.refresh}}).problem(t, http.StatusUnauthorized, "invalid_token", s.refresh)
		// Nothing changed: the cookie still works where it belongs.
		refresh(t, srv, s.refresh, nil).want(t, http.StatusOK)
	})

	t.Run("a mobile session's token is refused by refresh", func(t *testing.T) {
		s := signInMobile(t, srv, u.Email, latchkeytest.DefaultPassword)
		refresh(t, srv, s.refresh, nil).problem(t, http.StatusUnauthorized, "invalid_token", s.refresh)
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/refresh-mobile",
			json: map[string]string{"refresh_token": s.refresh}}).want(t, http.StatusOK)
	})

	t.Run("missing token", func(t *testing.T) {
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/refresh-mobile",
			json: map[string]string{}}).problem(t, http.StatusUnauthorized, "missing_refresh_token")
	})

	t.Run("factory mobile token", func(t *testing.T) {
		_, raw := latchkeytest.NewRefreshToken(t, srv.Engine, u, latchkeytest.Mobile())
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/refresh-mobile",
			json: map[string]string{"refresh_token": raw}}).want(t, http.StatusOK)
	})
}
