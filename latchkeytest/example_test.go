package latchkeytest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

// exampleT stands in for the *testing.T a real test would pass, so that the
// examples can run as documentation. Only the methods the kit calls are
// provided.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func newExampleT() *exampleT                     { return &exampleT{} }
func (t *exampleT) Helper()                      {}
func (t *exampleT) Context() context.Context     { return context.Background() }
func (t *exampleT) Cleanup(f func())             { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
func (t *exampleT) TempDir() string {
	dir, err := os.MkdirTemp("", "latchkeytest-example")
	if err != nil {
		panic(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// done runs the cleanups, as the testing package does after a test.
func (t *exampleT) done() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

func ExampleNewEngine() {
	t := newExampleT() // in a test: the test's t
	defer t.done()

	e := latchkeytest.NewEngine(t)
	fmt.Println(e.Clock.Now().Format(time.RFC3339))
	e.Clock.Advance(time.Hour)
	fmt.Println(e.Clock.Now().Format(time.RFC3339))
	// Output:
	// 2030-01-01T09:00:00Z
	// 2030-01-01T10:00:00Z
}

func ExampleNewUser() {
	t := newExampleT()
	defer t.done()
	e := latchkeytest.NewEngine(t)

	u := latchkeytest.NewUser(t, e)
	admin := latchkeytest.NewUser(t, e, latchkeytest.Admin(), latchkeytest.Email("root@test.example"))
	fmt.Println(u.Email, u.Role, u.IsActive)
	fmt.Println(admin.Email, admin.Role)

	_, err := e.Login(t.Context(), u.Email, latchkeytest.DefaultPassword, latchkey.ModeCookie, latchkey.Device{})
	fmt.Println(err)
	// Output:
	// user1@test.example user true
	// root@test.example admin
	// <nil>
}

func ExampleNewRefreshToken() {
	t := newExampleT()
	defer t.done()
	e := latchkeytest.NewEngine(t)
	u := latchkeytest.NewUser(t, e)

	// RefreshTokenFactory.create(session, user) -> (row, raw_token)
	s, raw := latchkeytest.NewRefreshToken(t, e, u)
	_, err := e.Refresh(t.Context(), raw, latchkey.ModeCookie, latchkey.Device{})
	fmt.Println(s.Generation, s.Revoked(), err)

	// expires_delta=timedelta(days=-1)
	_, expired := latchkeytest.NewRefreshToken(t, e, u, latchkeytest.ExpiresIn(-24*time.Hour))
	_, err = e.Refresh(t.Context(), expired, latchkey.ModeCookie, latchkey.Device{})
	fmt.Println(errors.Is(err, latchkey.ErrExpiredToken))

	// is_revoked=True
	_, revoked := latchkeytest.NewRefreshToken(t, e, u, latchkeytest.Revoked())
	_, err = e.Refresh(t.Context(), revoked, latchkey.ModeCookie, latchkey.Device{})
	fmt.Println(errors.Is(err, latchkey.ErrRevokedToken))
	// Output:
	// 0 false <nil>
	// true
	// true
}

func ExampleSpentTokens() {
	t := newExampleT()
	defer t.done()
	e := latchkeytest.NewEngine(t)
	u := latchkeytest.NewUser(t, e)

	s, _ := latchkeytest.NewRefreshToken(t, e, u, latchkeytest.Rotated(2))
	spent := latchkeytest.SpentTokens(t, e, s)
	fmt.Println(s.Generation, len(spent))

	// Replaying a spent token is reuse: the whole session ends.
	_, err := e.Refresh(t.Context(), spent[0], latchkey.ModeCookie, latchkey.Device{})
	fmt.Println(errors.Is(err, latchkey.ErrTokenReused))
	// Output:
	// 2 2
	// true
}
