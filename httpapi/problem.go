package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/latchkey-dev/latchkey"
)

// Problem is an RFC 9457 problem details body with Latchkey's stable code.
// Detail is kept for clients of the original FastAPI service, which read
// "detail".
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   string `json:"code"`
	// Error is set on the OAuth endpoints only: the RFC 6749 §5.2 code that
	// RFC 7009 §2.2.1 and OAuth client libraries expect.
	Error  string       `json:"error,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError names one invalid input field.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// apiError is an error with its HTTP status and stable code, for failures
// that come from the HTTP layer rather than the engine.
type apiError struct {
	status     int
	code       string
	detail     string
	retryAfter int // seconds; 0 = none
}

func (e *apiError) Error() string { return e.code + ": " + e.detail }

func errorf(status int, code, detail string) error {
	return &apiError{status: status, code: code, detail: detail}
}

// Errors the HTTP layer itself returns.
var (
	errNotAuthenticated = errorf(http.StatusUnauthorized, "not_authenticated", "Not authenticated")
	errForbidden        = errorf(http.StatusForbidden, "forbidden", "Not enough privileges")
	errMissingRefresh   = errorf(http.StatusUnauthorized, "missing_refresh_token", "Refresh token missing")
	errCrossSite        = errorf(http.StatusForbidden, "cross_site_request", "Cross-site request refused")
	errNotFound         = errorf(http.StatusNotFound, "not_found", "Not found")
)

// mapping is the one table from engine errors to status, code and the detail
// a client sees. Anything not listed is a 500 that is logged, never shown.
var mapping = []struct {
	err    error
	status int
	code   string
	detail string
}{
	{latchkey.ErrInvalidCredentials, http.StatusUnauthorized, "invalid_credentials", "Incorrect email or password"},
	{latchkey.ErrTokenReused, http.StatusUnauthorized, "token_reused", "Refresh token reused; the session has ended"},
	{latchkey.ErrExpiredToken, http.StatusUnauthorized, "token_expired", "Token expired"},
	{latchkey.ErrRevokedToken, http.StatusUnauthorized, "token_revoked", "Token revoked"},
	{latchkey.ErrInvalidToken, http.StatusUnauthorized, "invalid_token", "Invalid token"},
	{latchkey.ErrInactiveUser, http.StatusUnauthorized, "user_inactive", "Inactive user"},
	{latchkey.ErrEmailTaken, http.StatusConflict, "email_taken", "Email already registered"},
	{latchkey.ErrNotFound, http.StatusNotFound, "not_found", "Not found"},
	{latchkey.ErrOverloaded, http.StatusServiceUnavailable, "overloaded", "Server busy, try again shortly"},
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := Problem{Type: "about:blank"}
	var ae *apiError
	var ve *latchkey.ValidationError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		p.Status, p.Code, p.Detail = ae.status, ae.code, ae.detail
		if ae.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(ae.retryAfter))
		}
	case errors.As(err, &mbe):
		p.Status, p.Code, p.Detail = http.StatusRequestEntityTooLarge, "body_too_large", "Request body too large"
	case errors.As(err, &ve):
		p.Status, p.Code, p.Detail = http.StatusUnprocessableEntity, "validation_failed", ve.Field+" "+ve.Reason
		if errors.Is(err, latchkey.ErrWeakPassword) {
			p.Code = "weak_password"
		}
		p.Errors = []FieldError{{Field: ve.Field, Reason: ve.Reason}}
	default:
		for _, m := range mapping {
			if errors.Is(err, m.err) {
				p.Status, p.Code, p.Detail = m.status, m.code, m.detail
				break
			}
		}
	}
	if p.Status == 0 {
		p.Status, p.Code, p.Detail = http.StatusInternalServerError, "internal_error", "Internal error"
		s.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path,
			"request_id", requestID(r.Context()), "err", err)
	}
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey"`)
	}
	p.Title = http.StatusText(p.Status)
	if strings.HasPrefix(r.URL.Path, "/oauth/") {
		p.Error = oauthError(p.Status)
	}
	setErrorCode(r.Context(), p.Code)
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// oauthError is the RFC 6749 §5.2 error code for a status on the OAuth
// endpoints.
func oauthError(status int) string {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "invalid_client"
	case status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests:
		return "temporarily_unavailable"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request"
	}
}
