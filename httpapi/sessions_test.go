package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/httpapi"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

type sessionList struct {
	Sessions []httpapi.SessionJSON `json:"sessions"`
}

func listSessions(tb testing.TB, srv *latchkeytest.Server, access string) []httpapi.SessionJSON {
	tb.Helper()
	var l sessionList
	send(tb, srv, nil, request{method: "GET", path: "/v1/auth/sessions", bearer: access}).decode(tb, http.StatusOK, &l)
	return l.Sessions
}

func TestListSessions(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t)
	u := latchkeytest.NewUser(t, srv.Engine)
	signedIn := srv.Engine.Clock.Now()

	r := send(t, srv, nil, request{method: "POST", path: "/v1/auth/login",
		json:   map[string]string{"email": u.Email, "password": latchkeytest.DefaultPassword},
		header: map[string]string{"User-Agent": "Firefox/140.0", "X-Device-Name": "Work laptop"}})
	var laptop httpapi.TokenResponse
	r.decode(t, http.StatusOK, &laptop)
	laptopCookie := r.mustRefreshCookie(t).Value

	srv.Engine.Clock.Advance(time.Hour)
	r = send(t, srv, nil, request{method: "POST", path: "/v1/auth/login-mobile",
		json:   map[string]string{"email": u.Email, "password": latchkeytest.DefaultPassword, "device_name": "Pixel 9"},
		header: map[string]string{"User-Agent": "LatchkeyApp/3.1 (Android)"}})
	var phone httpapi.TokenResponse
	r.decode(t, http.StatusOK, &phone)

	// Sessions of another user, and ended ones, are not listed.
	newSignedInUser(t, srv)
	ended := signIn(t, srv, u.Email, latchkeytest.DefaultPassword)
	send(t, srv, nil, request{method: "POST", path: "/v1/auth/logout", cookie: ended.refresh}).want(t, http.StatusNoContent)

	// The laptop refreshes later: last used moves on, created stays.
	srv.Engine.Clock.Advance(time.Hour)
	used := srv.Engine.Clock.Now()
	r = refresh(t, srv, laptopCookie, map[string]string{"User-Agent": "Firefox/140.0"})
	r.decode(t, http.StatusOK, &laptop)

	got := listSessions(t, srv, laptop.AccessToken)
	if len(got) != 2 {
		t.Fatalf("got %d sessions, want 2: %+v", len(got), got)
	}
	byName := map[string]httpapi.SessionJSON{}
	for _, s := range got {
		byName[s.DeviceName] = s
	}
	l, p := byName["Work laptop"], byName["Pixel 9"]
	if l.UserAgent != "Firefox/140.0" || l.IPAddress != "127.0.0.1" || l.Mode != latchkey.ModeCookie || !l.Current {
		t.Errorf("laptop = %+v, want Firefox/140.0 from 127.0.0.1, cookie mode, current", l)
	}
	if !l.CreatedAt.Equal(signedIn) || !l.LastUsedAt.Equal(used) {
		t.Errorf("laptop created %s, last used %s; want %s and %s", l.CreatedAt, l.LastUsedAt, signedIn, used)
	}
	if p.UserAgent != "LatchkeyApp/3.1 (Android)" || p.Mode != latchkey.ModeMobile || p.Current {
		t.Errorf("phone = %+v, want LatchkeyApp, mobile mode, not current", p)
	}
	if !p.CreatedAt.Equal(signedIn.Add(time.Hour)) {
		t.Errorf("phone created %s, want %s", p.CreatedAt, signedIn.Add(time.Hour))
	}
	if p.ID == uuid.Nil || l.ID == p.ID {
		t.Errorf("session ids %s and %s, want two distinct ids", l.ID, p.ID)
	}

	// From the phone, the phone is current.
	send(t, srv, nil, request{method: "POST", path: "/v1/auth/refresh-mobile",
		json:   map[string]string{"refresh_token": phone.RefreshToken},
		header: map[string]string{"User-Agent": "LatchkeyApp/3.1 (Android)"}}).decode(t, http.StatusOK, &phone)
	for _, s := range listSessions(t, srv, phone.AccessToken) {
		if s.Current != (s.ID == p.ID) {
			t.Errorf("from the phone, %s (%s) current = %v", s.ID, s.DeviceName, s.Current)
		}
	}

	send(t, srv, nil, request{method: "GET", path: "/v1/auth/sessions"}).problem(t, http.StatusUnauthorized, "not_authenticated")
}

func TestDeleteSession(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t)
	u, mine := newSignedInUser(t, srv)
	lost := signIn(t, srv, u.Email, latchkeytest.DefaultPassword)
	_, stranger := newSignedInUser(t, srv)

	var lostID, strangerID uuid.UUID
	for _, s := range listSessions(t, srv, mine.access) {
		if !s.Current {
			lostID = s.ID
		}
	}
	for _, s := range listSessions(t, srv, stranger.access) {
		strangerID = s.ID
	}

	// Another user's session does not exist for the caller, and stays.
	send(t, srv, nil, request{method: "DELETE", path: "/v1/auth/sessions/" + strangerID.String(), bearer: mine.access}).
		problem(t, http.StatusNotFound, "not_found")
	refresh(t, srv, stranger.refresh, nil).want(t, http.StatusOK)
	send(t, srv, nil, request{method: "DELETE", path: "/v1/auth/sessions/" + uuid.NewString(), bearer: mine.access}).
		problem(t, http.StatusNotFound, "not_found")
	send(t, srv, nil, request{method: "DELETE", path: "/v1/auth/sessions/nope", bearer: mine.access}).
		problem(t, http.StatusUnprocessableEntity, "validation_failed")

	// Signing out the lost device ends its session and its access token.
	send(t, srv, nil, request{method: "DELETE", path: "/v1/auth/sessions/" + lostID.String(), bearer: mine.access}).
		want(t, http.StatusNoContent)
	refresh(t, srv, lost.refresh, nil).problem(t, http.StatusUnauthorized, "token_revoked")
	me(t, srv, lost.access).problem(t, http.StatusUnauthorized, "token_revoked")
	me(t, srv, mine.access).want(t, http.StatusOK)
	if got := listSessions(t, srv, mine.access); len(got) != 1 || !got[0].Current {
		t.Errorf("sessions after ending one = %+v, want only the current one", got)
	}
	// Ending it again: it is gone.
	send(t, srv, nil, request{method: "DELETE", path: "/v1/auth/sessions/" + lostID.String(), bearer: mine.access}).
		problem(t, http.StatusNotFound, "not_found")
}

func TestDeleteOtherSessions(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t)
	u, mine := newSignedInUser(t, srv)
	others := []session{
		signIn(t, srv, u.Email, latchkeytest.DefaultPassword),
		signIn(t, srv, u.Email, latchkeytest.DefaultPassword),
	}
	phone := signInMobile(t, srv, u.Email, latchkeytest.DefaultPassword)
	_, stranger := newSignedInUser(t, srv)

	// A bare DELETE must not end anything by accident.
	send(t, srv, nil, request{method: "DELETE", path: "/v1/auth/sessions", bearer: mine.access}).
		problem(t, http.StatusUnprocessableEntity, "validation_failed")
	if got := listSessions(t, srv, mine.access); len(got) != 4 {
		t.Fatalf("after a bare DELETE, %d sessions, want 4", len(got))
	}

	var n map[string]int
	send(t, srv, nil, request{method: "DELETE", path: "/v1/auth/sessions?others=true", bearer: mine.access}).
		decode(t, http.StatusOK, &n)
	if n["revoked_sessions"] != 3 {
		t.Errorf("revoked_sessions = %d, want 3", n["revoked_sessions"])
	}
	for _, s := range others {
		refresh(t, srv, s.refresh, nil).problem(t, http.StatusUnauthorized, "token_revoked")
	}
	send(t, srv, nil, request{method: "POST", path: "/v1/auth/refresh-mobile",
		json: map[string]string{"refresh_token": phone.refresh}}).problem(t, http.StatusUnauthorized, "token_revoked")
	if got := listSessions(t, srv, mine.access); len(got) != 1 || !got[0].Current {
		t.Errorf("sessions = %+v, want only the current one", got)
	}
	refresh(t, srv, mine.refresh, nil).want(t, http.StatusOK)
	refresh(t, srv, stranger.refresh, nil).want(t, http.StatusOK)
}
