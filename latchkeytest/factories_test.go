package latchkeytest_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

var browser = latchkey.Device{ID: "dev-1", UserAgent: "Mozilla/5.0 kit"}

// TestRefreshTokenPair is the original refresh_token_pair fixture: a valid
// token refreshes.
func TestRefreshTokenPair(t *testing.T) {
	t.Parallel()
	e := latchkeytest.NewEngine(t)
	u := latchkeytest.NewUser(t, e)
	s, raw := latchkeytest.NewRefreshToken(t, e, u, latchkeytest.WithDevice(browser))
	if s.UserID != u.ID || s.Mode != latchkey.ModeCookie || s.Revoked() || s.Generation != 0 {
		t.Fatalf("session %+v", s)
	}
	if want := latchkeytest.Start.Add(e.Config().RefreshIdleTTL); !s.IdleDeadline.Equal(want) {
		t.Fatalf("idle deadline %v, want the engine's idle lifetime (%v)", s.IdleDeadline, want)
	}
	g, err := e.Refresh(t.Context(), raw, latchkey.ModeCookie, browser)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if g.UserID != u.ID || g.SessionID != s.ID || string(g.RefreshToken) == raw {
		t.Fatal("the refresh did not rotate the factory's session")
	}
	if _, err := e.Authenticate(t.Context(), string(g.AccessToken)); err != nil {
		t.Fatalf("access token from a factory session: %v", err)
	}
}

// TestExpiredRefreshTokenPair is the original expired_refresh_token_pair
// fixture: expires_delta=timedelta(days=-1).
func TestExpiredRefreshTokenPair(t *testing.T) {
	t.Parallel()
	e := latchkeytest.NewEngine(t)
	u := latchkeytest.NewUser(t, e)
	s, raw := latchkeytest.NewRefreshToken(t, e, u, latchkeytest.ExpiresIn(-24*time.Hour))
	if !s.IdleDeadline.Before(e.Clock.Now()) {
		t.Fatalf("idle deadline %v is not in the past", s.IdleDeadline)
	}
	_, err := e.Refresh(t.Context(), raw, latchkey.ModeCookie, browser)
	if !errors.Is(err, latchkey.ErrExpiredToken) {
		t.Fatalf("got %v, want ErrExpiredToken", err)
	}
	// A token that expires in a minute works now and not after it.
	_, soon := latchkeytest.NewRefreshToken(t, e, u, latchkeytest.ExpiresIn(time.Minute))
	e.Clock.Advance(time.Minute)
	if _, err := e.Refresh(t.Context(), soon, latchkey.ModeCookie, browser); !errors.Is(err, latchkey.ErrExpiredToken) {
		t.Fatalf("after ExpiresIn(1m) and a minute: %v", err)
	}
}

// TestRevokedRefreshTokenPair is the original revoked_refresh_token_pair
// fixture: is_revoked=True.
func TestRevokedRefreshTokenPair(t *testing.T) {
	t.Parallel()
	e := latchkeytest.NewEngine(t)
	s, raw := latchkeytest.NewRefreshToken(t, e, latchkeytest.NewUser(t, e), latchkeytest.Revoked())
	if !s.Revoked() {
		t.Fatal("session not revoked")
	}
	if _, err := e.Refresh(t.Context(), raw, latchkey.ModeCookie, browser); !errors.Is(err, latchkey.ErrRevokedToken) {
		t.Fatalf("got %v, want ErrRevokedToken", err)
	}
}

// TestRotatedSpentTokenEndsSession replays a spent token of a Rotated
// session: it is reuse, and the session ends for the current token too.
func TestRotatedSpentTokenEndsSession(t *testing.T) {
	t.Parallel()
	e := latchkeytest.NewEngine(t)
	u := latchkeytest.NewUser(t, e)
	s, current := latchkeytest.NewRefreshToken(t, e, u, latchkeytest.Rotated(3), latchkeytest.WithDevice(browser))
	spent := latchkeytest.SpentTokens(t, e, s)
	if s.Generation != 3 || len(spent) != 3 {
		t.Fatalf("generation %d with %d spent tokens, want 3 and 3", s.Generation, len(spent))
	}
	// Even the previous generation from the same device is outside the grace
	// window: the factory dates its rotations before it.
	_, err := e.Refresh(t.Context(), spent[2], latchkey.ModeCookie, browser)
	if !errors.Is(err, latchkey.ErrTokenReused) {
		t.Fatalf("spent token: got %v, want ErrTokenReused", err)
	}
	if _, err := e.Refresh(t.Context(), current, latchkey.ModeCookie, browser); !errors.Is(err, latchkey.ErrRevokedToken) {
		t.Fatalf("current token after reuse: got %v, want ErrRevokedToken", err)
	}
}

func TestRotatedCurrentTokenRefreshes(t *testing.T) {
	t.Parallel()
	e := latchkeytest.NewEngine(t)
	s, current := latchkeytest.NewRefreshToken(t, e, latchkeytest.NewUser(t, e), latchkeytest.Rotated(2), latchkeytest.Mobile())
	g, err := e.Refresh(t.Context(), current, latchkey.ModeMobile, browser)
	if err != nil {
		t.Fatalf("current token of a rotated session: %v", err)
	}
	got, err := e.Store.SessionByID(t.Context(), s.ID)
	if err != nil || got.Generation != 3 || g.SessionID != s.ID {
		t.Fatalf("after refresh: generation %d, %v", got.Generation, err)
	}
	// A mobile session's token is refused in cookie mode.
	_, mobile := latchkeytest.NewRefreshToken(t, e, latchkeytest.NewUser(t, e), latchkeytest.Mobile())
	if _, err := e.Refresh(t.Context(), mobile, latchkey.ModeCookie, browser); !errors.Is(err, latchkey.ErrInvalidToken) {
		t.Fatalf("mobile token in cookie mode: %v", err)
	}
}

func TestNewUser(t *testing.T) {
	t.Parallel()
	e := latchkeytest.NewEngine(t)
	a := latchkeytest.NewUser(t, e)
	b := latchkeytest.NewUser(t, e)
	if a.Email != "user1@test.example" || b.Email != "user2@test.example" {
		t.Fatalf("emails %q, %q", a.Email, b.Email)
	}
	if a.Role != latchkey.RoleUser || !a.IsActive || !a.IsVerified {
		t.Fatalf("defaults %+v", a)
	}
	// The default password is below the policy and still signs in.
	if _, err := e.Login(t.Context(), a.Email, latchkeytest.DefaultPassword, latchkey.ModeCookie, browser); err != nil {
		t.Fatalf("login with the default password: %v", err)
	}
	c := latchkeytest.NewUser(t, e, latchkeytest.Email("Ada@Example.com"), latchkeytest.Password("pw"),
		latchkeytest.FullName("Ada"), latchkeytest.Admin(), latchkeytest.Unverified())
	if c.Email != "ada@example.com" || c.FullName != "Ada" || c.Role != latchkey.RoleAdmin || c.IsVerified {
		t.Fatalf("options not applied: %+v", c)
	}
	if _, err := e.Login(t.Context(), "ada@example.com", "pw", latchkey.ModeCookie, browser); err != nil {
		t.Fatalf("login with a custom password: %v", err)
	}
	d := latchkeytest.NewUser(t, e, latchkeytest.Inactive())
	if d.IsActive {
		t.Fatal("Inactive() user is active")
	}
	_, err := e.Login(t.Context(), d.Email, latchkeytest.DefaultPassword, latchkey.ModeCookie, browser)
	if !errors.Is(err, latchkey.ErrInvalidCredentials) {
		t.Fatalf("inactive user's login: %v", err)
	}
	// Register still enforces the policy: the kit adds no public way around it.
	latchkeytest.NewUser(t, e, latchkeytest.Password("password"))
	_, err = e.Register(t.Context(), latchkey.NewUser{Email: "weak@test.example", Password: "password"})
	if !errors.Is(err, latchkey.ErrWeakPassword) {
		t.Fatalf("Register with a password the kit accepted: %v", err)
	}
}

// TestParallelFactories shares one engine between parallel subtests: emails
// stay unique and every token works.
func TestParallelFactories(t *testing.T) {
	t.Parallel()
	e := latchkeytest.NewEngine(t)
	var mu sync.Mutex
	seen := map[string]bool{}
	t.Run("group", func(t *testing.T) {
		for i := range 16 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				u := latchkeytest.NewUser(t, e)
				_, raw := latchkeytest.NewRefreshToken(t, e, u)
				if _, err := e.Refresh(t.Context(), raw, latchkey.ModeCookie, browser); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if seen[u.Email] {
					t.Errorf("email %q handed out twice", u.Email)
				}
				seen[u.Email] = true
			})
		}
	})
	if len(seen) != 16 {
		t.Fatalf("%d distinct users, want 16", len(seen))
	}
}
