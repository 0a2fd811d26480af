package verifier_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/httpapi"
	"github.com/latchkey-dev/latchkey/latchkeytest"
	"github.com/latchkey-dev/latchkey/verifier"
)

// exampleT stands in for the *testing.T a real test would pass to the test
// kit, so that the example can run as documentation.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func (t *exampleT) Helper()                      {}
func (t *exampleT) Context() context.Context     { return context.Background() }
func (t *exampleT) Cleanup(f func())             { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
func (t *exampleT) TempDir() string {
	dir, err := os.MkdirTemp("", "verifier-example")
	if err != nil {
		panic(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (t *exampleT) done() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

func ExampleVerifier_RequireAuth() {
	t := &exampleT{} // in a test: the test's t
	defer t.done()
	ctx := context.Background()

	// A Latchkey server and a user who signs in to it.
	srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) {
		o.IntrospectionSecret = "feed-secret"
	}))
	u := latchkeytest.NewUser(t, srv.Engine)
	g, err := srv.Engine.Login(ctx, u.Email, latchkeytest.DefaultPassword, latchkey.ModeMobile, latchkey.Device{})
	if err != nil {
		panic(err)
	}

	// Another service, trusting that server's tokens.
	v, err := verifier.New(srv.URL+"/.well-known/jwks.json", verifier.Options{
		Issuer:              "latchkey",
		Audience:            "latchkey",
		RevocationFeedURL:   srv.URL + "/v1/auth/revocations",
		RevocationFeedToken: "feed-secret",
		Now:                 srv.Engine.Clock.Now, // the test server's clock; omit in production
	})
	if err != nil {
		panic(err)
	}
	// In production: go v.Run(ctx).
	if err := v.PollOnce(ctx); err != nil {
		panic(err)
	}
	orders := v.RequireAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "orders of a %s", c.Role)
	}))

	call := func(token string) {
		req := httptest.NewRequest(http.MethodGet, "/orders", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		orders.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("Content-Type"), strings.TrimSpace(rec.Body.String()))
	}
	call(string(g.AccessToken))
	call("")

	// Signing out ends the session; the next poll tells the verifier.
	if err := srv.Engine.Logout(ctx, string(g.RefreshToken), latchkey.Device{}); err != nil {
		panic(err)
	}
	// The feed serves a revocation once it has settled (a few seconds).
	srv.Engine.Clock.Advance(latchkey.RevocationFeedDelay)
	if err := v.PollOnce(ctx); err != nil {
		panic(err)
	}
	_, err = v.Verify(ctx, string(g.AccessToken))
	fmt.Println(err)
	// Output:
	// 200 text/plain; charset=utf-8 orders of a user
	// 401 application/problem+json {"type":"about:blank","title":"Unauthorized","status":401,"detail":"Not authenticated","code":"not_authenticated"}
	// verifier: session revoked
}
