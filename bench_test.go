package latchkey_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/enginetest"
	"github.com/latchkey-dev/latchkey/internal/pgtest"
)

// Benchmarks of the engine on SQLite, beside the primitives they are built
// from, measured in the same run (docs/BENCHMARKS.md).

// BenchmarkRefresh measures one rotation: tag check, two HMACs, the
// conditional write, and an access token (one Ed25519 signature).
func BenchmarkRefresh(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchRefresh(b, openSQLite) })
	b.Run("postgres", func(b *testing.B) {
		benchRefresh(b, func(tb testing.TB) latchkey.Store { return pgtest.Open(tb) })
	})
}

func benchRefresh(b *testing.B, open enginetest.Open) {
	env := enginetest.NewEnv(b, open, nil)
	g := env.Login(env.User("bench@example.com"), latchkey.ModeMobile, enginetest.Phone)
	tok := string(g.RefreshToken)
	b.ReportAllocs()
	for b.Loop() {
		r, err := env.Engine.Refresh(env.Ctx, tok, latchkey.ModeMobile, enginetest.Phone)
		if err != nil {
			b.Fatal(err)
		}
		tok = string(r.RefreshToken)
	}
}

// BenchmarkLogin measures a sign-in with the production argon2id parameters
// (m = 19 MiB, t = 2, p = 1); the hash dominates.
func BenchmarkLogin(b *testing.B) {
	env := enginetest.NewEnv(b, openSQLite, func(c *latchkey.Config) { c.PasswordParams = latchkey.DefaultPasswordParams })
	u := env.User("bench@example.com")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := env.Engine.Login(env.Ctx, u.Email, enginetest.Password, latchkey.ModeCookie, enginetest.Browser); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticate measures an access-token check: signature, claims
// and one indexed read of the user and session.
func BenchmarkAuthenticate(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchAuthenticate(b, openSQLite) })
	b.Run("postgres", func(b *testing.B) {
		benchAuthenticate(b, func(tb testing.TB) latchkey.Store { return pgtest.Open(tb) })
	})
}

func benchAuthenticate(b *testing.B, open enginetest.Open) {
	env := enginetest.NewEnv(b, open, nil)
	g := env.Login(env.User("bench@example.com"), latchkey.ModeCookie, enginetest.Browser)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := env.Engine.Authenticate(env.Ctx, string(g.AccessToken)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyAccessToken measures the offline check alone.
func BenchmarkVerifyAccessToken(b *testing.B) {
	env := enginetest.NewEnv(b, openSQLite, nil)
	g := env.Login(env.User("bench@example.com"), latchkey.ModeCookie, enginetest.Browser)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := env.Engine.VerifyAccessToken(string(g.AccessToken)); err != nil {
			b.Fatal(err)
		}
	}
}

// Baselines.

func BenchmarkBaselineSHA256(b *testing.B) {
	var secret [32]byte
	rand.Read(secret[:])
	b.ReportAllocs()
	for b.Loop() {
		secret = sha256.Sum256(secret[:])
	}
}

func BenchmarkBaselineHMACSHA256(b *testing.B) {
	key, msg := make([]byte, 32), make([]byte, 75)
	rand.Read(key)
	b.ReportAllocs()
	for b.Loop() {
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		m.Sum(nil)
	}
}

func BenchmarkBaselineEd25519Sign(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 300)
	b.ReportAllocs()
	for b.Loop() {
		ed25519.Sign(priv, msg)
	}
}

func BenchmarkBaselineEd25519Verify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 300)
	sig := ed25519.Sign(priv, msg)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("verify")
		}
	}
}
