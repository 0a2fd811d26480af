package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
)

// UserJSON is a user as the API shows it (the original service's fields).
type UserJSON struct {
	ID         uuid.UUID     `json:"id"`
	Email      string        `json:"email"`
	FullName   string        `json:"full_name"`
	Role       latchkey.Role `json:"role"`
	IsActive   bool          `json:"is_active"`
	IsVerified bool          `json:"is_verified"`
	CreatedAt  time.Time     `json:"created_at"`
	UpdatedAt  time.Time     `json:"updated_at"`
}

func userJSON(u *latchkey.User) UserJSON {
	return UserJSON{ID: u.ID, Email: u.Email, FullName: u.FullName, Role: u.Role, IsActive: u.IsActive,
		IsVerified: u.IsVerified, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// SessionJSON is one of the caller's sessions (a signed-in device).
type SessionJSON struct {
	ID         uuid.UUID     `json:"id"`
	Mode       latchkey.Mode `json:"mode"`
	DeviceName string        `json:"device_name"`
	UserAgent  string        `json:"user_agent"`
	IPAddress  string        `json:"ip_address"`
	CreatedAt  time.Time     `json:"created_at"`
	LastUsedAt time.Time     `json:"last_used_at"`
	ExpiresAt  time.Time     `json:"expires_at"`
	Current    bool          `json:"current"`
}

// TokenResponse answers a sign-in or refresh. RefreshToken is set only in
// mobile mode; browsers get it in an HttpOnly cookie.
type TokenResponse struct {
	AccessToken      string    `json:"access_token"`
	TokenType        string    `json:"token_type"`
	ExpiresIn        int64     `json:"expires_in"`
	RefreshToken     string    `json:"refresh_token,omitempty"`
	RefreshExpiresIn int64     `json:"refresh_expires_in,omitempty"`
	User             *UserJSON `json:"user,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

var errMalformed = errorf(http.StatusUnprocessableEntity, "malformed_body", "Request body is not valid JSON for this endpoint")

// decodeJSON reads exactly one JSON object into v, refusing unknown fields
// so that a typo is an error rather than a silently ignored setting.
func decodeJSON(r *http.Request, v any) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errMalformed
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errMalformed
	}
	return nil
}

// decodeForm reads an application/x-www-form-urlencoded body.
func decodeForm(r *http.Request) (url.Values, error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return nil, errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/x-www-form-urlencoded")
	}
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, errMalformed
	}
	return r.PostForm, nil
}

func isForm(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded"
}

func pathID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return uuid.Nil, &latchkey.ValidationError{Field: "id", Reason: "is not a UUID"}
	}
	return id, nil
}

// bearer returns the Authorization header's bearer token.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}
