package httpapi_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/httpapi"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

func revoke(tb testing.TB, srv *latchkeytest.Server, form url.Values) *answer {
	tb.Helper()
	return send(tb, srv, nil, request{method: "POST", path: "/oauth/revoke", form: form})
}

func TestOAuthRevoke(t *testing.T) {
	t.Parallel()

	t.Run("refresh token ends its session", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		u, s := newSignedInUser(t, srv)
		other := signIn(t, srv, u.Email, latchkeytest.DefaultPassword)
		r := revoke(t, srv, url.Values{"token": {s.refresh}, "token_type_hint": {"refresh_token"}}).want(t, http.StatusOK)
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", cc)
		}
		refresh(t, srv, s.refresh, nil).problem(t, http.StatusUnauthorized, "token_revoked")
		me(t, srv, s.access).problem(t, http.StatusUnauthorized, "token_revoked")
		// Only that session.
		refresh(t, srv, other.refresh, nil).want(t, http.StatusOK)
	})

	t.Run("mobile refresh token", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		u := latchkeytest.NewUser(t, srv.Engine)
		s := signInMobile(t, srv, u.Email, latchkeytest.DefaultPassword)
		revoke(t, srv, url.Values{"token": {s.refresh}}).want(t, http.StatusOK)
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/refresh-mobile",
			json: map[string]string{"refresh_token": s.refresh}}).problem(t, http.StatusUnauthorized, "token_revoked")
	})

	t.Run("access token ends its session", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		_, s := newSignedInUser(t, srv)
		revoke(t, srv, url.Values{"token": {s.access}, "token_type_hint": {"access_token"}}).want(t, http.StatusOK)
		me(t, srv, s.access).problem(t, http.StatusUnauthorized, "token_revoked")
		refresh(t, srv, s.refresh, nil).problem(t, http.StatusUnauthorized, "token_revoked")
	})

	t.Run("unknown, forged or spent token is 200 and changes nothing", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		_, s := newSignedInUser(t, srv)
		forged := tamper(s.refresh, 40)
		for _, tok := range []string{"unknown", forged, tamper(s.access, strings.LastIndexByte(s.access, '.')+5), "lkr_" + strings.Repeat("A", 100)} {
			// A wrong hint must not matter either (RFC 7009 §2.1).
			revoke(t, srv, url.Values{"token": {tok}, "token_type_hint": {"access_token"}}).want(t, http.StatusOK)
		}
		refresh(t, srv, s.refresh, nil).want(t, http.StatusOK)
		// Revoking twice is still 200.
		revoke(t, srv, url.Values{"token": {s.access}}).want(t, http.StatusOK)
		revoke(t, srv, url.Values{"token": {s.access}}).want(t, http.StatusOK)
	})

	t.Run("expired token", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		u := latchkeytest.NewUser(t, srv.Engine)
		_, raw := latchkeytest.NewRefreshToken(t, srv.Engine, u, latchkeytest.ExpiresIn(-time.Hour))
		revoke(t, srv, url.Values{"token": {raw}}).want(t, http.StatusOK)
	})

	t.Run("bad requests", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		a := revoke(t, srv, url.Values{})
		a.problem(t, http.StatusBadRequest, "invalid_request")
		// OAuth client libraries read RFC 6749's "error" member.
		var body struct{ Error string }
		if err := json.Unmarshal(a.body, &body); err != nil || body.Error != "invalid_request" {
			t.Errorf("error member = %q (%v), want invalid_request", body.Error, err)
		}
		send(t, srv, nil, request{method: "POST", path: "/oauth/revoke", json: map[string]string{"token": "x"}}).
			problem(t, http.StatusUnsupportedMediaType, "unsupported_media_type")
	})
}

func introspect(tb testing.TB, srv *latchkeytest.Server, auth, token string) *answer {
	tb.Helper()
	return send(tb, srv, nil, request{method: "POST", path: "/oauth/introspect", bearer: auth,
		form: url.Values{"token": {token}}})
}

func TestOAuthIntrospect(t *testing.T) {
	t.Parallel()
	const secret = "resource-server-secret-0123456789"
	srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) { o.IntrospectionSecret = secret }))
	_, admin := newSignedInUser(t, srv, latchkeytest.Admin())
	u, s := newSignedInUser(t, srv)
	cfg := srv.Engine.Config()

	t.Run("access token as admin", func(t *testing.T) {
		var got httpapi.Introspection
		introspect(t, srv, admin.access, s.access).decode(t, http.StatusOK, &got)
		now := srv.Engine.Clock.Now()
		if !got.Active || got.TokenType != "access_token" || got.Subject != u.ID.String() || got.Username != u.Email ||
			got.Role != "user" || got.ClientID != cfg.ClientID || got.Issuer != cfg.Issuer || got.Audience != cfg.Audience {
			t.Errorf("introspection = %+v, want active access token of %s", got, u.Email)
		}
		if _, err := uuid.Parse(got.SessionID); err != nil {
			t.Errorf("sid = %q, want a session id", got.SessionID)
		}
		if got.IssuedAt != now.Unix() || got.ExpiresAt != now.Add(accessTTL).Unix() {
			t.Errorf("iat, exp = %d, %d; want %d, %d", got.IssuedAt, got.ExpiresAt, now.Unix(), now.Add(accessTTL).Unix())
		}
		if got.TokenVersion == nil {
			t.Error("no token_version")
		}
	})

	t.Run("refresh token with the secret", func(t *testing.T) {
		var got httpapi.Introspection
		introspect(t, srv, secret, s.refresh).decode(t, http.StatusOK, &got)
		if !got.Active || got.TokenType != "refresh_token" || got.Subject != u.ID.String() {
			t.Errorf("introspection = %+v, want active refresh token of %s", got, u.ID)
		}
		if got.ExpiresAt != srv.Engine.Clock.Now().Add(idleTTL).Unix() {
			t.Errorf("exp = %d, want the idle deadline %d", got.ExpiresAt, srv.Engine.Clock.Now().Add(idleTTL).Unix())
		}
	})

	t.Run("inactive tokens", func(t *testing.T) {
		_, gone := newSignedInUser(t, srv)
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/logout", cookie: gone.refresh}).want(t, http.StatusNoContent)
		_, expired := latchkeytest.NewRefreshToken(t, srv.Engine, u, latchkeytest.ExpiresIn(-time.Minute))
		for name, tok := range map[string]string{
			"garbage":               "garbage",
			"tampered access token": tamper(s.access, strings.LastIndexByte(s.access, '.')+5),
			"revoked access token":  gone.access,
			"revoked refresh token": gone.refresh,
			"expired refresh token": expired,
		} {
			r := introspect(t, srv, secret, tok).want(t, http.StatusOK)
			// RFC 7662 §2.2: nothing but "active": false.
			if got := strings.TrimSpace(string(r.body)); got != `{"active":false}` {
				t.Errorf("%s: introspection = %s, want {\"active\":false}", name, got)
			}
		}
	})

	t.Run("spent refresh token", func(t *testing.T) {
		_, fresh := newSignedInUser(t, srv)
		refresh(t, srv, fresh.refresh, nil).want(t, http.StatusOK)
		var got httpapi.Introspection
		introspect(t, srv, secret, fresh.refresh).decode(t, http.StatusOK, &got)
		if got.Active {
			t.Errorf("a rotated refresh token introspects as %+v, want inactive", got)
		}
	})

	t.Run("caller must authenticate", func(t *testing.T) {
		introspect(t, srv, "", s.access).problem(t, http.StatusUnauthorized, "not_authenticated")
		introspect(t, srv, "wrong-secret", s.access).problem(t, http.StatusUnauthorized, "invalid_token", "wrong-secret")
		introspect(t, srv, s.access, s.access).problem(t, http.StatusForbidden, "forbidden")
	})

	t.Run("token is required", func(t *testing.T) {
		send(t, srv, nil, request{method: "POST", path: "/oauth/introspect", bearer: secret, form: url.Values{}}).
			problem(t, http.StatusBadRequest, "invalid_request")
	})

	t.Run("no secret configured", func(t *testing.T) {
		plain := latchkeytest.NewServer(t)
		// An empty configured secret must not admit an empty bearer.
		introspect(t, plain, "", "x").problem(t, http.StatusUnauthorized, "not_authenticated")
		introspect(t, plain, secret, "x").problem(t, http.StatusUnauthorized, "invalid_token")
	})
}

func TestRevocationFeed(t *testing.T) {
	t.Parallel()
	const secret = "feed-secret-abcdefghijklmnop"
	srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) { o.IntrospectionSecret = secret }))
	_, admin := newSignedInUser(t, srv, latchkeytest.Admin())

	feed := func(t *testing.T, auth, query string) httpapi.RevocationsResponse {
		t.Helper()
		var r httpapi.RevocationsResponse
		send(t, srv, nil, request{method: "GET", path: "/v1/auth/revocations" + query, bearer: auth}).decode(t, http.StatusOK, &r)
		return r
	}

	start := feed(t, secret, "")
	if len(start.Revocations) != 0 || start.HasMore {
		t.Fatalf("feed before any revocation = %+v, want empty", start)
	}

	// Revoke: one logout, then two sessions of one user at the same instant
	// (logout-all), then one more later.
	_, a := newSignedInUser(t, srv)
	send(t, srv, nil, request{method: "POST", path: "/v1/auth/logout", cookie: a.refresh}).want(t, http.StatusNoContent)
	srv.Engine.Clock.Advance(time.Second)
	bu, b1 := newSignedInUser(t, srv)
	signIn(t, srv, bu.Email, latchkeytest.DefaultPassword)
	send(t, srv, nil, request{method: "POST", path: "/v1/auth/logout-all", bearer: b1.access}).want(t, http.StatusOK)
	srv.Engine.Clock.Advance(time.Second)
	_, c := newSignedInUser(t, srv)
	revoke(t, srv, url.Values{"token": {c.refresh}}).want(t, http.StatusOK)
	// The feed serves a revocation once it has settled, so that a cursor
	// never skips one committed late.
	srv.Engine.Clock.Advance(latchkey.RevocationFeedDelay)

	var seen []httpapi.RevocationJSON
	cursor := start.Cursor
	for range 10 {
		page := feed(t, admin.access, "?limit=2&since="+url.QueryEscape(cursor))
		if len(page.Revocations) > 2 {
			t.Fatalf("page of %d, want at most 2", len(page.Revocations))
		}
		seen = append(seen, page.Revocations...)
		cursor = page.Cursor
		if !page.HasMore {
			break
		}
	}
	if len(seen) != 4 {
		t.Fatalf("feed returned %d revocations, want 4: %+v", len(seen), seen)
	}
	ids := map[uuid.UUID]bool{}
	for i, r := range seen {
		if ids[r.SessionID] {
			t.Errorf("session %s listed twice", r.SessionID)
		}
		ids[r.SessionID] = true
		if i > 0 && r.RevokedAt.Before(seen[i-1].RevokedAt) {
			t.Errorf("feed out of order at %d", i)
		}
	}
	if seen[0].UserID != a.user.ID || seen[0].Reason != latchkey.RevokeLogout {
		t.Errorf("first revocation = %+v, want %s's logout", seen[0], a.user.Email)
	}
	if seen[1].Reason != latchkey.RevokeLogoutAll || seen[2].Reason != latchkey.RevokeLogoutAll || seen[1].UserID != bu.ID {
		t.Errorf("revocations 2 and 3 = %+v, %+v; want %s's logout_all", seen[1], seen[2], bu.Email)
	}
	if seen[3].UserID != c.user.ID {
		t.Errorf("last revocation = %+v, want %s's", seen[3], c.user.Email)
	}

	// The largest page a client may ask for.
	if all := feed(t, secret, "?limit=1000"); len(all.Revocations) != 4 || all.HasMore {
		t.Errorf("feed with limit=1000 = %d revocations, has_more %v; want 4, false", len(all.Revocations), all.HasMore)
	}
	// A page that is exactly full says whether more is ready.
	if first := feed(t, secret, "?limit=4"); len(first.Revocations) != 4 || first.HasMore {
		t.Errorf("feed with limit=4 = %d revocations, has_more %v; want 4, false", len(first.Revocations), first.HasMore)
	}
	if first := feed(t, secret, "?limit=3"); len(first.Revocations) != 3 || !first.HasMore {
		t.Errorf("feed with limit=3 = %d revocations, has_more %v; want 3, true", len(first.Revocations), first.HasMore)
	}

	// Reading on from the end: nothing new, the same cursor.
	end := feed(t, secret, "?since="+url.QueryEscape(cursor))
	if len(end.Revocations) != 0 || end.HasMore || end.Cursor != cursor {
		t.Errorf("feed at the end = %+v, want empty with cursor %q", end, cursor)
	}
	// A revocation after the cursor appears.
	srv.Engine.Clock.Advance(time.Second)
	_, d := newSignedInUser(t, srv)
	send(t, srv, nil, request{method: "POST", path: "/v1/auth/logout", cookie: d.refresh}).want(t, http.StatusNoContent)
	if early := feed(t, secret, "?since="+url.QueryEscape(cursor)); len(early.Revocations) != 0 || early.Cursor != cursor {
		t.Errorf("feed right after a logout = %+v, want nothing yet, cursor %q", early, cursor)
	}
	srv.Engine.Clock.Advance(latchkey.RevocationFeedDelay)
	next := feed(t, secret, "?since="+url.QueryEscape(cursor))
	if len(next.Revocations) != 1 || next.Revocations[0].UserID != d.user.ID {
		t.Errorf("feed after one more logout = %+v, want %s's session", next, d.user.Email)
	}

	t.Run("errors", func(t *testing.T) {
		send(t, srv, nil, request{method: "GET", path: "/v1/auth/revocations"}).problem(t, http.StatusUnauthorized, "not_authenticated")
		_, user := newSignedInUser(t, srv)
		send(t, srv, nil, request{method: "GET", path: "/v1/auth/revocations", bearer: user.access}).problem(t, http.StatusForbidden, "forbidden")
		for _, q := range []string{"?since=nope", "?since=" + base64.RawURLEncoding.EncodeToString([]byte("short")), "?limit=0", "?limit=1001", "?limit=x"} {
			send(t, srv, nil, request{method: "GET", path: "/v1/auth/revocations" + q, bearer: secret}).
				problem(t, http.StatusUnprocessableEntity, "validation_failed")
		}
	})
}

// TestJWKS checks what a resource server relies on: the access token names
// a published Ed25519 key that verifies its signature, and carries the
// claims of RFC 9068.
func TestJWKS(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t)
	u, s := newSignedInUser(t, srv)

	r := send(t, srv, nil, request{method: "GET", path: "/.well-known/jwks.json"})
	var set latchkey.JWKS
	r.decode(t, http.StatusOK, &set)
	if cc := r.header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control = %q, want public, max-age=300", cc)
	}

	parts := strings.Split(s.access, ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d parts, want 3", len(parts))
	}
	var header struct {
		Alg, Typ, Kid string
	}
	var claims struct {
		Iss, Aud, Sub, Sid, Jti, Role, ClientID string
		Iat, Exp                                int64
	}
	for i, v := range []any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
	}
	if header.Alg != "EdDSA" || header.Typ != "at+jwt" || header.Kid == "" {
		t.Errorf("header = %+v, want EdDSA, at+jwt and a kid", header)
	}
	if claims.Sub != u.ID.String() || claims.Role != "user" || claims.Exp-claims.Iat != int64(accessTTL.Seconds()) ||
		claims.Sid == "" || claims.Jti == "" || claims.Iss == "" || claims.Aud == "" {
		t.Errorf("claims = %+v, want sub %s, role user, %s lifetime, sid, jti, iss, aud", claims, u.ID, accessTTL)
	}
	var key *latchkey.JWK
	for i := range set.Keys {
		if set.Keys[i].KeyID == header.Kid {
			key = &set.Keys[i]
		}
	}
	if key == nil {
		t.Fatalf("kid %q not in the JWKS %+v", header.Kid, set)
	}
	if key.KeyType != "OKP" || key.Curve != "Ed25519" || key.Algorithm != "EdDSA" || key.Use != "sig" {
		t.Errorf("key = %+v, want OKP Ed25519 EdDSA sig", key)
	}
	pub, err := base64.RawURLEncoding.DecodeString(key.X)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		t.Fatalf("key x = %q: %v", key.X, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		t.Error("the access token's signature does not verify with the published key")
	}
}
