package verifier_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/latchkey-dev/latchkey/verifier"
)

// TestRedirectsAreNotFollowed: a JWKS or feed URL that redirects elsewhere
// is an error; the bearer token never reaches the redirect's target.
func TestRedirectsAreNotFollowed(t *testing.T) {
	var reached atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.Write([]byte(`{"keys":[]}`))
	}))
	defer target.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusFound)
	}))
	defer redirector.Close()

	v, err := verifier.New(redirector.URL+"/.well-known/jwks.json", verifier.Options{
		Issuer: "latchkey", Audience: "latchkey",
		RevocationFeedURL: redirector.URL + "/v1/auth/revocations", RevocationFeedToken: "feed-secret-token-0123456789abcdef",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.FetchKeys(t.Context()); err == nil {
		t.Error("FetchKeys followed a redirect")
	}
	if err := v.PollOnce(t.Context()); err == nil {
		t.Error("PollOnce followed a redirect")
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the redirect target was reached %d times", n)
	}
}
