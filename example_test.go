package latchkey_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/store/sqlite"
)

// newExampleEngine opens an engine on a throwaway SQLite file. Real programs
// load the master key from a secret store; it must not live in the database.
func newExampleEngine(clock func() time.Time) (*latchkey.Engine, func()) {
	dir, err := os.MkdirTemp("", "latchkey-example")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "latchkey.db"), sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	masterKey := make([]byte, latchkey.MasterKeySize)
	rand.Read(masterKey)
	engine, err := latchkey.New(ctx, store, latchkey.Config{
		MasterKey:      masterKey,
		PasswordParams: latchkey.PasswordParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, // fast, for the example only
		Now:            clock,
	})
	if err != nil {
		log.Fatal(err)
	}
	return engine, func() { store.Close(); os.RemoveAll(dir) }
}

func ExampleNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "latchkey-example")
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(ctx, filepath.Join(dir, "latchkey.db"), sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	masterKey := make([]byte, latchkey.MasterKeySize) // load yours from a secret store
	rand.Read(masterKey)
	engine, err := latchkey.New(ctx, store, latchkey.Config{MasterKey: masterKey})
	if err != nil {
		log.Fatal(err)
	}
	jwks := engine.JWKS()
	fmt.Println(len(jwks.Keys), jwks.Keys[0].KeyType, jwks.Keys[0].Curve, jwks.Keys[0].Algorithm)

	// Without a master key there is no engine.
	_, err = latchkey.New(ctx, store, latchkey.Config{})
	fmt.Println(err)
	// Output:
	// 1 OKP Ed25519 EdDSA
	// latchkey: invalid master_key: is required
}

func ExampleEngine_Login() {
	engine, done := newExampleEngine(nil)
	defer done()
	ctx := context.Background()
	_, err := engine.Register(ctx, latchkey.NewUser{Email: "ada@example.com", Password: "analytical engine 1843"})
	if err != nil {
		log.Fatal(err)
	}
	device := latchkey.Device{UserAgent: "Mozilla/5.0", ID: "laptop-1"}
	grant, err := engine.Login(ctx, "Ada@Example.com", "analytical engine 1843", latchkey.ModeCookie, device)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(grant.User.Email, grant.Role)
	fmt.Println(strings.HasPrefix(string(grant.RefreshToken), "lkr_"))
	fmt.Println(grant.RefreshToken) // tokens print redacted

	_, err = engine.Login(ctx, "ada@example.com", "wrong", latchkey.ModeCookie, device)
	fmt.Println(errors.Is(err, latchkey.ErrInvalidCredentials))
	// Output:
	// ada@example.com user
	// true
	// [redacted]
	// true
}

func ExampleEngine_Refresh() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	engine, done := newExampleEngine(func() time.Time { return now })
	defer done()
	ctx := context.Background()
	if _, err := engine.Register(ctx, latchkey.NewUser{Email: "ada@example.com", Password: "analytical engine 1843"}); err != nil {
		log.Fatal(err)
	}
	tab := latchkey.Device{UserAgent: "Mozilla/5.0", ID: "laptop-1"}
	first, err := engine.Login(ctx, "ada@example.com", "analytical engine 1843", latchkey.ModeCookie, tab)
	if err != nil {
		log.Fatal(err)
	}

	// Each refresh token is good for one rotation.
	second, err := engine.Refresh(ctx, string(first.RefreshToken), latchkey.ModeCookie, tab)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("rotated:", second.RefreshToken != first.RefreshToken)

	// A second tab presenting the same token within the grace window gets the
	// same new token instead of ending the session.
	now = now.Add(2 * time.Second)
	retry, err := engine.Refresh(ctx, string(first.RefreshToken), latchkey.ModeCookie, tab)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same token in the grace window:", retry.RefreshToken == second.RefreshToken)

	// Later, the spent token is treated as stolen: the whole session ends.
	now = now.Add(time.Minute)
	_, err = engine.Refresh(ctx, string(first.RefreshToken), latchkey.ModeCookie, tab)
	fmt.Println(errors.Is(err, latchkey.ErrTokenReused))
	_, err = engine.Refresh(ctx, string(second.RefreshToken), latchkey.ModeCookie, tab)
	fmt.Println(errors.Is(err, latchkey.ErrRevokedToken))
	// Output:
	// rotated: true
	// same token in the grace window: true
	// true
	// true
}
