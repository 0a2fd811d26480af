package enginetest

import (
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

func kid(t *testing.T, e *latchkey.Engine, access latchkey.Token) string {
	t.Helper()
	c, err := e.VerifyAccessToken(string(access))
	if err != nil {
		t.Fatalf("VerifyAccessToken: %v", err)
	}
	return c.KeyID
}

func jwksIDs(e *latchkey.Engine) map[string]bool {
	ids := map[string]bool{}
	for _, k := range e.JWKS().Keys {
		ids[k.KeyID] = true
	}
	return ids
}

// testRotateSigningKey follows a signing key through its life: published a
// lead time before use, signing after it, and kept in the JWKS until the last
// token it signed has expired.
func testRotateSigningKey(t *testing.T, open Open) {
	env := NewEnv(t, open, func(c *latchkey.Config) {
		c.KeyPublishLead = 5 * time.Minute
		c.AccessTTL = 15 * time.Minute
		c.Leeway = 5 * time.Second
	})
	u := env.User("keys@example.com")
	old := env.Login(u, latchkey.ModeCookie, Browser)
	oldKid := kid(t, env.Engine, old.AccessToken)
	k, err := env.Engine.RotateKey(env.Ctx, latchkey.KeySigning)
	if err != nil {
		t.Fatal(err)
	}
	if ids := jwksIDs(env.Engine); !ids[oldKid] || !ids[k.ID] || len(ids) != 2 {
		t.Fatalf("JWKS after rotate = %v, want the old and the new key", ids)
	}
	if got := kid(t, env.Engine, env.Login(u, latchkey.ModeCookie, Browser).AccessToken); got != oldKid {
		t.Fatal("the new key signs before its publish lead has passed")
	}
	env.Clock.Advance(5 * time.Minute)
	fresh := env.Login(u, latchkey.ModeCookie, Browser)
	if got := kid(t, env.Engine, fresh.AccessToken); got != k.ID {
		t.Fatalf("after the lead, signed by %s, want %s", got, k.ID)
	}
	// Tokens the old key signed before the switch still verify.
	if _, err := env.Engine.VerifyAccessToken(string(old.AccessToken)); err != nil {
		t.Fatalf("old key's token after the switch: %v", err)
	}
	env.Clock.Advance(14 * time.Minute)
	if !jwksIDs(env.Engine)[oldKid] {
		t.Fatal("old key left the JWKS while its tokens may be live")
	}
	env.Clock.Advance(time.Minute + 6*time.Second)
	if ids := jwksIDs(env.Engine); ids[oldKid] || !ids[k.ID] {
		t.Fatalf("JWKS once the old key's tokens expired = %v, want only %s", ids, k.ID)
	}
	// Another engine on the same store learns the new key from a token that
	// names it (it reloads on an unknown kid).
	other, err := latchkey.New(env.Ctx, env.Store, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	next, err := env.Engine.RotateKey(env.Ctx, latchkey.KeySigning)
	if err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(5 * time.Minute)
	g := env.Login(u, latchkey.ModeCookie, Browser)
	if kid(t, env.Engine, g.AccessToken) != next.ID {
		t.Fatal("the second rotation's key does not sign")
	}
	if _, err := other.Authenticate(env.Ctx, string(g.AccessToken)); err != nil {
		t.Fatalf("another instance authenticating a token of a key it had not loaded: %v", err)
	}
}

func testRevokeSigningKey(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	u := env.User("revoke-sig@example.com")
	g := env.Login(u, latchkey.ModeCookie, Browser)
	oldKid := kid(t, env.Engine, g.AccessToken)
	n, err := env.Engine.RevokeKey(env.Ctx, oldKid)
	if err != nil || n != 0 {
		t.Fatalf("RevokeKey = %d, %v", n, err)
	}
	if jwksIDs(env.Engine)[oldKid] || len(jwksIDs(env.Engine)) != 1 {
		t.Fatalf("JWKS after revoking = %v, want only a replacement", jwksIDs(env.Engine))
	}
	_, err = env.Engine.Authenticate(env.Ctx, string(g.AccessToken))
	wantErr(t, "token of a revoked signing key", err, latchkey.ErrInvalidToken)
	// The replacement signs at once; the session itself lives on.
	r := env.Refresh(g.RefreshToken, Browser)
	if kid(t, env.Engine, r.AccessToken) == oldKid {
		t.Fatal("the revoked key still signs")
	}
	_, err = env.Engine.RevokeKey(env.Ctx, oldKid)
	wantErr(t, "revoking twice", err, latchkey.ErrNotFound)
	_, err = env.Engine.RevokeKey(env.Ctx, "sig_nonexistent")
	wantErr(t, "unknown key", err, latchkey.ErrNotFound)
}

func currentKey(t *testing.T, env *Env, p latchkey.KeyPurpose) string {
	t.Helper()
	keys, err := env.Engine.Keys(env.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Purpose == p && k.Current {
			return k.ID
		}
	}
	t.Fatalf("no current %s key in %+v", p, keys)
	return ""
}

// testRotationKeys rotates the chain key: old sessions keep their key, new
// ones take the new one, and revoking a rotation key ends exactly its
// sessions.
func testRotationKeys(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	u := env.User("chain@example.com")
	old := env.Login(u, latchkey.ModeCookie, Browser)
	oldKey := currentKey(t, env, latchkey.KeyRotation)
	k, err := env.Engine.RotateKey(env.Ctx, latchkey.KeyRotation)
	if err != nil {
		t.Fatal(err)
	}
	fresh := env.Login(u, latchkey.ModeCookie, Browser)
	if got := env.Session(fresh.SessionID).RotationKeyID; got != k.ID {
		t.Fatalf("new session uses %s, want %s", got, k.ID)
	}
	if got := env.Session(old.SessionID).RotationKeyID; got != oldKey {
		t.Fatalf("old session moved to %s", got)
	}
	// The old session still rotates in one round trip: the first write
	// offers hashes for the recent keys and the store picks the session's.
	calls := env.Spy.Calls()
	o1 := env.Refresh(old.RefreshToken, Browser)
	if got := env.Spy.Calls() - calls; got != 1 {
		t.Fatalf("refreshing a session of the previous rotation key took %d store calls, want 1", got)
	}
	env.Refresh(o1.RefreshToken, Browser)
	env.Refresh(fresh.RefreshToken, Browser)
	n, err := env.Engine.RevokeKey(env.Ctx, oldKey)
	if err != nil || n != 1 {
		t.Fatalf("RevokeKey(rotation) = %d, %v; want 1 session", n, err)
	}
	if s := env.Session(old.SessionID); s.RevokeReason != latchkey.RevokeKeyCompromised {
		t.Fatalf("old session reason %q", s.RevokeReason)
	}
	if env.Session(fresh.SessionID).Revoked() {
		t.Fatal("a session of the new key was ended")
	}
}

// testTagKeys rotates the tag key: tokens tagged with the previous key keep
// working; a token from two keys back no longer passes the tag check.
func testTagKeys(t *testing.T, open Open) {
	env := NewEnv(t, open, func(c *latchkey.Config) { c.KeyPublishLead = time.Minute; c.RefreshIdleTTL = 24 * time.Hour })
	u := env.User("tags@example.com")
	a := env.Login(u, latchkey.ModeMobile, Phone)
	b := env.Login(u, latchkey.ModeMobile, Phone)
	if _, err := env.Engine.RotateKey(env.Ctx, latchkey.KeyTag); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(time.Minute)
	a1, err := env.Engine.Refresh(env.Ctx, string(a.RefreshToken), latchkey.ModeMobile, Phone)
	if err != nil {
		t.Fatalf("token tagged by the previous key: %v", err)
	}
	if _, err := env.Engine.RotateKey(env.Ctx, latchkey.KeyTag); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(time.Minute)
	if _, err := env.Engine.Refresh(env.Ctx, string(a1.RefreshToken), latchkey.ModeMobile, Phone); err != nil {
		t.Fatalf("token tagged one key back: %v", err)
	}
	_, err = env.Engine.Refresh(env.Ctx, string(b.RefreshToken), latchkey.ModeMobile, Phone)
	wantErr(t, "token tagged two keys back", err, latchkey.ErrInvalidToken)
}

// testAllKeysRevoked: if racing revocations leave a purpose with no usable
// key, the next engine (or the revocation itself) makes a new one instead of
// failing to start.
func testAllKeysRevoked(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	keys, err := env.Store.Keys(env.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Purpose == latchkey.KeyTag {
			if err := env.Store.RevokeKey(env.Ctx, k.ID, env.Clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	e2, err := latchkey.New(env.Ctx, env.Store, env.Config)
	if err != nil {
		t.Fatalf("New with every tag key revoked: %v", err)
	}
	u := env.User("phoenix@example.com")
	g, err := e2.Login(env.Ctx, u.Email, Password, latchkey.ModeCookie, Browser)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e2.Refresh(env.Ctx, string(g.RefreshToken), latchkey.ModeCookie, Browser); err != nil {
		t.Fatalf("refresh with the new tag key: %v", err)
	}
}
