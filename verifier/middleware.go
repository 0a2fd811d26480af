package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

type ctxKey struct{}

// authenticated is what the middleware puts in a request's context: the
// claims and the verifier that checked them, so that a RequireRole reuses
// only claims its own verifier (with its issuer and audience) accepted.
type authenticated struct {
	v *Verifier
	c *Claims
}

// ClaimsFrom returns the claims RequireAuth or RequireRole put in the
// request's context.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	a, ok := ctx.Value(ctxKey{}).(authenticated)
	return a.c, ok
}

// problem is an RFC 9457 problem details body with a stable code, the same
// shape Latchkey's own API answers with.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

// RequireAuth serves next only for requests carrying a valid access token
// in "Authorization: Bearer …" (RFC 6750 §2.1; tokens in the query string
// are not read), with the claims in the request's context (ClaimsFrom).
// Others get 401 with a WWW-Authenticate challenge (RFC 6750 §3), or 503
// when the verifier cannot decide (ErrUnavailable), as problem+json.
func (v *Verifier) RequireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r, ok := v.authenticate(w, r); ok {
			next.ServeHTTP(w, r)
		}
	})
}

// RequireRole is RequireAuth that also requires the token's role claim to
// equal role, answering 403 otherwise. Behind the same Verifier's
// RequireAuth it reuses the claims already verified. The role is the one
// the token was issued with; see the package doc for how long a role change
// can take to show.
func (v *Verifier) RequireRole(role string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, ok := v.authenticate(w, r)
		if !ok {
			return
		}
		if c, _ := ClaimsFrom(r.Context()); c.Role != role {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
			writeProblem(w, http.StatusForbidden, "forbidden", "Not enough privileges")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate verifies the request's token, or answers the request and
// returns false.
func (v *Verifier) authenticate(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	if a, ok := r.Context().Value(ctxKey{}).(authenticated); ok && a.v == v {
		return r, true
	}
	token, present := bearerToken(r)
	if !present {
		// RFC 6750 §3.1: a request without credentials gets a bare
		// challenge, no error code.
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeProblem(w, http.StatusUnauthorized, "not_authenticated", "Not authenticated")
		return nil, false
	}
	c, err := v.Verify(r.Context(), token)
	if err == nil {
		return r.WithContext(context.WithValue(r.Context(), ctxKey{}, authenticated{v: v, c: c})), true
	}
	var code, detail string
	switch {
	case errors.Is(err, ErrUnavailable):
		v.log.WarnContext(r.Context(), "verifier: cannot verify", "err", err)
		w.Header().Set("Retry-After", "1")
		writeProblem(w, http.StatusServiceUnavailable, "verifier_unavailable", "Cannot verify access tokens now, try again shortly")
		return nil, false
	case errors.Is(err, ErrExpiredToken):
		code, detail = "token_expired", "Token expired"
	case errors.Is(err, ErrRevokedSession):
		code, detail = "token_revoked", "Token revoked"
	default:
		code, detail = "invalid_token", "Invalid token"
	}
	v.log.DebugContext(r.Context(), "verifier: token refused", "err", err)
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+detail+`"`)
	writeProblem(w, http.StatusUnauthorized, code, detail)
	return nil, false
}

// bearerToken reads the Authorization header. present is false when there
// is no bearer credential at all; a malformed one (two headers, an empty
// token) comes back as "" with present true, so that it is refused as an
// invalid token.
func bearerToken(r *http.Request) (token string, present bool) {
	hs := r.Header.Values("Authorization")
	if len(hs) == 0 {
		return "", false
	}
	scheme, tok, _ := strings.Cut(hs[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	if len(hs) != 1 {
		return "", true
	}
	return strings.TrimSpace(tok), true
}

func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{Type: "about:blank", Title: http.StatusText(status), Status: status,
		Detail: detail, Code: code})
}
