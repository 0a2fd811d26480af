// Package verifier lets other Go services accept Latchkey access tokens
// without calling Latchkey on each request: it checks a token's signature
// against the server's JWKS (/.well-known/jwks.json) and its claims offline,
// and can follow the server's revocation feed (GET /v1/auth/revocations) so
// that a session that was logged out is refused within seconds rather than
// when its access tokens expire.
//
// Protecting a handler:
//
//	v, err := verifier.New("https://auth.example.com/.well-known/jwks.json", verifier.Options{
//		Issuer:              "latchkey",
//		Audience:            "latchkey",
//		RevocationFeedURL:   "https://auth.example.com/v1/auth/revocations",
//		RevocationFeedToken: os.Getenv("LATCHKEY_INTROSPECTION_SECRET"),
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	go v.Run(ctx) // follows the revocation feed until ctx ends
//
//	mux.Handle("GET /orders", v.RequireAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		c, _ := verifier.ClaimsFrom(r.Context())
//		fmt.Fprintln(w, "orders of", c.UserID)
//	})))
//	mux.Handle("GET /reports", v.RequireRole(verifier.RoleAdmin, reports))
//
// # What is checked
//
// Verify follows RFC 8725 and RFC 9068 §4: the algorithm is pinned to EdDSA
// (so "none" and HS256-with-the-public-key are refused before any key is
// looked at), the key is the JWKS entry named by the header's kid and no
// other (jku, x5u and embedded jwk headers are never followed), typ must be
// at+jwt, iss and aud must equal the configured values, exp, iat and jti
// must be present, and exp, nbf and iat are checked with a small explicit
// leeway.
//
// # Keys
//
// The JWKS is fetched lazily, by the first Verify (or FetchKeys, to fail
// fast at start-up), and kept for the response's Cache-Control max-age,
// bounded to between 30 seconds and one hour. A token naming an unknown kid
// causes one refetch, at most once per Options.MinRefetchInterval, so that
// a stream of made-up key ids cannot turn the verifier against the server.
// When a refetch fails the keys already held keep being used.
//
// # Revocation feed
//
// Offline verification alone accepts a token until it expires. With
// Options.RevocationFeedURL set, Run polls the feed every
// Options.PollInterval and Verify refuses the sessions it lists with
// ErrRevokedSession. A revoked session id is remembered until its access
// tokens can no longer be valid (revoked_at + Options.MaxTokenLifetime +
// leeway). A failed poll keeps what is known and is logged; once no poll has
// succeeded for Options.MaxFeedStaleness (12 poll intervals by default),
// Verify answers ErrUnavailable rather than go on without revocations. The
// server serves a revocation only once it has settled
// (latchkey.RevocationFeedDelay, about 15 s), so that its cursor never skips
// one; as a second line of defence, every minute (or four poll intervals, if
// longer) a poll also rereads the last few minutes of the feed. Until the first
// poll has succeeded Verify answers ErrUnavailable: a verifier that has never
// read the feed cannot tell a logged-out session from a live one, and
// failing closed is the safer default.
//
// # Roles
//
// The role an offline verifier sees is the one in the token, fixed when the
// token was issued. Latchkey bumps the user's token_version on a role change
// but does not end the user's sessions, so a demotion is not in the
// revocation feed: RequireRole can honour an old role for up to the
// access-token lifetime (15 minutes by default). Endpoints that must see a
// demotion at once should ask Latchkey (POST /oauth/introspect) instead.
package verifier
