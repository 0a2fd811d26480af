package httpapi

import (
	"crypto/subtle"
	"net/http"
	"sync"
	"time"

	"github.com/latchkey-dev/latchkey"
)

var errInvalidRequest = errorf(http.StatusBadRequest, "invalid_request", "The token parameter is required")

// oauthRevoke implements RFC 7009: the server answers 200 whether or not the
// token was valid (§2.2), so that revocation reveals nothing; a refresh
// token or an access token that verifies ends its session.
func (s *Server) oauthRevoke(w http.ResponseWriter, r *http.Request) error {
	f, err := decodeForm(r)
	if err != nil {
		return err
	}
	token := f.Get("token")
	if token == "" {
		return errInvalidRequest
	}
	if err := s.e.RevokeToken(r.Context(), token, s.device(r, "", "")); err != nil && !isTokenError(err) {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}

// resourceServerAuth admits a caller of introspection or the revocation
// feed: an admin access token, or the configured introspection secret
// (compared in constant time).
func (s *Server) resourceServerAuth(r *http.Request) error {
	tok, ok := bearer(r)
	if !ok {
		return errNotAuthenticated
	}
	if secret := s.opts.IntrospectionSecret; secret != "" &&
		subtle.ConstantTimeCompare([]byte(tok), []byte(secret)) == 1 {
		return nil
	}
	p, err := s.e.Authenticate(r.Context(), tok)
	if err != nil {
		return err
	}
	if p.User.Role != latchkey.RoleAdmin {
		return errForbidden
	}
	return nil
}

// Introspection is an RFC 7662 §2.2 response.
type Introspection struct {
	Active       bool   `json:"active"`
	TokenType    string `json:"token_type,omitempty"`
	Subject      string `json:"sub,omitempty"`
	SessionID    string `json:"sid,omitempty"`
	ClientID     string `json:"client_id,omitempty"`
	Issuer       string `json:"iss,omitempty"`
	Audience     string `json:"aud,omitempty"`
	Username     string `json:"username,omitempty"`
	Role         string `json:"role,omitempty"`
	IssuedAt     int64  `json:"iat,omitempty"`
	ExpiresAt    int64  `json:"exp,omitempty"`
	TokenVersion *int64 `json:"token_version,omitempty"`
}

// oauthIntrospect implements RFC 7662 for access and refresh tokens. An
// inactive, unknown or malformed token is {"active": false}.
func (s *Server) oauthIntrospect(w http.ResponseWriter, r *http.Request) error {
	if err := s.resourceServerAuth(r); err != nil {
		return err
	}
	f, err := decodeForm(r)
	if err != nil {
		return err
	}
	token := f.Get("token")
	if token == "" {
		return errInvalidRequest
	}
	out := Introspection{}
	if p, err := s.e.Authenticate(r.Context(), token); err == nil {
		c := p.Claims
		v := p.User.TokenVersion
		out = Introspection{Active: true, TokenType: "access_token", Subject: c.UserID.String(),
			SessionID: c.SessionID.String(), ClientID: c.ClientID, Issuer: c.Issuer, Audience: c.Audience,
			Username: p.User.Email, Role: string(p.User.Role), IssuedAt: c.IssuedAt.Unix(), ExpiresAt: c.ExpiresAt.Unix(),
			TokenVersion: &v}
	} else if !isTokenError(err) {
		return err
	} else if sess, err := s.e.IntrospectRefreshToken(r.Context(), token); err == nil {
		cfg := s.e.Config()
		out = Introspection{Active: true, TokenType: "refresh_token", Subject: sess.UserID.String(),
			SessionID: sess.ID.String(), ClientID: cfg.ClientID, Issuer: cfg.Issuer,
			IssuedAt: sess.CreatedAt.Unix(), ExpiresAt: sess.IdleDeadline.Unix()}
	} else if !isTokenError(err) {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// keyReloader rereads the keys at most once a second when the JWKS is
// asked for, so that a key added by `latchkey keys rotate` (another process)
// is published promptly.
type keyReloader struct {
	e    *latchkey.Engine
	mu   sync.Mutex
	last time.Time
}

func (k *keyReloader) maybeReload(r *http.Request) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if time.Since(k.last) < time.Second {
		return
	}
	k.last = time.Now()
	_ = k.e.ReloadKeys(r.Context()) // on failure the loaded keys stay
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) error {
	s.keys.maybeReload(r)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age="+itoa(int(s.opts.JWKSMaxAge.Seconds())))
	return jsonEncode(w, s.e.JWKS())
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// ready reports whether this instance can serve: the store answers and the
// clocks agree within latchkey.MaxClockSkew (DESIGN.md, "Time").
func (s *Server) ready(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.Store().Ping(r.Context()); err != nil {
		s.log.WarnContext(r.Context(), "not ready: store unreachable", "err", err)
		return errorf(http.StatusServiceUnavailable, "not_ready", "Store unreachable")
	}
	skew, err := s.e.ClockSkew(r.Context())
	if err != nil {
		return errorf(http.StatusServiceUnavailable, "not_ready", "Clock check failed")
	}
	if skew > latchkey.MaxClockSkew || skew < -latchkey.MaxClockSkew {
		s.log.WarnContext(r.Context(), "not ready: clock skew", "skew", skew.String())
		return errorf(http.StatusServiceUnavailable, "clock_skew", "This instance's clock differs from the database's by "+skew.Round(time.Millisecond).String())
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
