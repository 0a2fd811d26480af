package httpapi

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// RefreshCookie is the name of the browser refresh-token cookie.
const RefreshCookie = "refresh_token"

// cookiePath scopes the cookie to the endpoints that read it.
const cookiePath = "/v1/auth"

const maxDeviceField = 200

func clip(s string) string {
	if len(s) > maxDeviceField {
		s = s[:maxDeviceField]
	}
	return strings.ToValidUTF8(s, "")
}

// device describes the calling client. The device id and name come from
// X-Device-ID / X-Device-Name (or the mobile body); with the user agent they
// decide whether a repeated refresh is a concurrent tab (grace) or theft.
func (s *Server) device(r *http.Request, id, name string) latchkey.Device {
	if id == "" {
		id = r.Header.Get("X-Device-ID")
	}
	if name == "" {
		name = r.Header.Get("X-Device-Name")
	}
	return latchkey.Device{ID: clip(id), Name: clip(name), UserAgent: clip(r.UserAgent()), IP: s.clientIP(r)}
}

// secureCookie is true unless the server runs in development mode and the
// request arrived on a loopback address (plain http://localhost).
func (s *Server) secureCookie(r *http.Request) bool {
	if !s.opts.Dev {
		return true
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil && ap.Addr().IsLoopback() {
			return false
		}
	}
	return true
}

func (s *Server) setRefreshCookie(w http.ResponseWriter, r *http.Request, g *latchkey.Grant, now time.Time) {
	maxAge := int(g.RefreshExpiresAt.Sub(now).Seconds())
	http.SetCookie(w, &http.Cookie{Name: RefreshCookie, Value: string(g.RefreshToken), Path: cookiePath,
		MaxAge: max(maxAge, 1), HttpOnly: true, Secure: s.secureCookie(r), SameSite: http.SameSiteStrictMode})
}

func (s *Server) clearRefreshCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: RefreshCookie, Value: "", Path: cookiePath, MaxAge: -1,
		HttpOnly: true, Secure: s.secureCookie(r), SameSite: http.SameSiteStrictMode})
}

func (s *Server) tokenResponse(g *latchkey.Grant, mode latchkey.Mode, now time.Time) TokenResponse {
	resp := TokenResponse{AccessToken: string(g.AccessToken), TokenType: "bearer",
		ExpiresIn: int64(g.AccessExpiresAt.Sub(now).Seconds())}
	if mode == latchkey.ModeMobile {
		resp.RefreshToken = string(g.RefreshToken)
		resp.RefreshExpiresIn = int64(g.RefreshExpiresAt.Sub(now).Seconds())
	}
	if g.User != nil {
		u := userJSON(g.User)
		resp.User = &u
	}
	return resp
}

type loginRequest struct {
	Email      string `json:"email"`
	Username   string `json:"username"`
	Password   string `json:"password"`
	DeviceID   string `json:"device_id"`
	DeviceName string `json:"device_name"`
}

// login serves both sign-in endpoints. It takes the OAuth2 password form
// (username, password) of the original service, or JSON.
func (s *Server) login(mode latchkey.Mode) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		// A cross-site sign-in is refused before anything else: login CSRF
		// would sign the victim's browser into the attacker's account.
		if mode == latchkey.ModeCookie {
			if err := s.sameSite(r); err != nil {
				return err
			}
		}
		var req loginRequest
		if isForm(r) {
			f, err := decodeForm(r)
			if err != nil {
				return err
			}
			req = loginRequest{Username: f.Get("username"), Password: f.Get("password"),
				DeviceID: f.Get("device_id"), DeviceName: f.Get("device_name")}
		} else if err := decodeJSON(r, &req); err != nil {
			return err
		}
		email := req.Email
		if email == "" {
			email = req.Username
		}
		if email == "" {
			return &latchkey.ValidationError{Field: "username", Reason: "is required"}
		}
		if req.Password == "" {
			return &latchkey.ValidationError{Field: "password", Reason: "is required"}
		}
		ip := rateKeyIP(s.clientIP(r))
		account := strings.ToLower(strings.TrimSpace(email))
		if canon, err := latchkey.NormalizeEmail(email); err == nil {
			account = canon
		}
		if err := s.limit(r.Context(), check("login_ip", s.limits.LoginPerIP, ip),
			check("login_account", s.limits.LoginPerAccount, account, ip)); err != nil {
			return err
		}
		g, err := s.e.Login(r.Context(), email, req.Password, mode, s.device(r, req.DeviceID, req.DeviceName))
		if err != nil {
			if errors.Is(err, latchkey.ErrInvalidCredentials) {
				s.metrics.signIns.WithLabelValues("failure").Inc()
			}
			return err
		}
		s.metrics.signIns.WithLabelValues("success").Inc()
		now := s.e.Now()
		if mode == latchkey.ModeCookie {
			s.setRefreshCookie(w, r, g, now)
		}
		return writeJSON(w, http.StatusOK, s.tokenResponse(g, mode, now))
	}
}

// refreshLimits applies the refresh limits: per client IP, and per session
// only for a token whose tag verifies, so that a forged token naming a
// victim's session cannot spend the victim's budget.
func (s *Server) refreshLimits(r *http.Request, token string) error {
	checks := []limitCheck{check("refresh_ip", s.limits.RefreshPerIP, rateKeyIP(s.clientIP(r)))}
	if sid, ok := s.e.RefreshTokenSession(token); ok {
		checks = append(checks, check("refresh_session", s.limits.RefreshPerSession, sid))
	}
	return s.limit(r.Context(), checks...)
}

// limitPasswordCheck limits how often a signed-in caller may have its
// current password checked (change-password, email change): a stolen access
// token must not become an unlimited password oracle, nor a way to fill the
// hashing pool.
func (s *Server) limitPasswordCheck(r *http.Request, p *latchkey.Principal) error {
	return s.limit(r.Context(), check("password_check", s.limits.LoginPerAccount, p.User.ID))
}

// refreshCookieValue returns the request's refresh cookie. More than one
// (a sibling subdomain can plant a second one with a narrower Path, which
// the browser sends first) is refused rather than guessed at, and the
// cookies are left alone.
func refreshCookieValue(r *http.Request) (string, error) {
	var vals []string
	for _, c := range r.Cookies() {
		if c.Name == RefreshCookie {
			vals = append(vals, c.Value)
		}
	}
	switch {
	case len(vals) > 1:
		return "", errorf(http.StatusUnauthorized, "invalid_token", "More than one refresh cookie")
	case len(vals) == 0 || vals[0] == "":
		return "", nil
	}
	return vals[0], nil
}

// refreshOutcome counts a refresh by its result.
func (s *Server) refreshOutcome(err error) {
	switch {
	case err == nil:
		s.metrics.refreshes.WithLabelValues("rotated").Inc()
	case errors.Is(err, latchkey.ErrTokenReused):
		s.metrics.reuse.Inc()
		s.metrics.refreshes.WithLabelValues("token_reused").Inc()
	case errors.Is(err, latchkey.ErrExpiredToken):
		s.metrics.refreshes.WithLabelValues("token_expired").Inc()
	case errors.Is(err, latchkey.ErrRevokedToken):
		s.metrics.refreshes.WithLabelValues("token_revoked").Inc()
	case errors.Is(err, latchkey.ErrInvalidToken):
		s.metrics.refreshes.WithLabelValues("invalid_token").Inc()
	default:
		s.metrics.refreshes.WithLabelValues("error").Inc()
	}
}

// refreshCookie rotates the browser's cookie.
func (s *Server) refreshCookie(w http.ResponseWriter, r *http.Request) error {
	if err := s.sameSite(r); err != nil {
		return err
	}
	token, err := refreshCookieValue(r)
	if err != nil {
		return err
	}
	if token == "" {
		return errMissingRefresh
	}
	if err := s.refreshLimits(r, token); err != nil {
		return err
	}
	g, err := s.e.Refresh(r.Context(), token, latchkey.ModeCookie, s.device(r, "", ""))
	s.refreshOutcome(err)
	if err != nil {
		if isTokenError(err) {
			s.clearRefreshCookie(w, r)
		}
		return err
	}
	now := s.e.Now()
	s.setRefreshCookie(w, r, g, now)
	return writeJSON(w, http.StatusOK, s.tokenResponse(g, latchkey.ModeCookie, now))
}

func isTokenError(err error) bool {
	return errors.Is(err, latchkey.ErrInvalidToken) || errors.Is(err, latchkey.ErrExpiredToken) ||
		errors.Is(err, latchkey.ErrRevokedToken) || errors.Is(err, latchkey.ErrTokenReused) ||
		errors.Is(err, latchkey.ErrInactiveUser)
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
	DeviceID     string `json:"device_id"`
}

// refreshMobile rotates a token sent in the body and returns both tokens.
func (s *Server) refreshMobile(w http.ResponseWriter, r *http.Request) error {
	var req refreshRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return errMissingRefresh
	}
	if err := s.refreshLimits(r, req.RefreshToken); err != nil {
		return err
	}
	g, err := s.e.Refresh(r.Context(), req.RefreshToken, latchkey.ModeMobile, s.device(r, req.DeviceID, ""))
	s.refreshOutcome(err)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.tokenResponse(g, latchkey.ModeMobile, s.e.Now()))
}

// logout ends the session of the refresh token in the cookie or, for mobile
// clients, in the body. A token that does not verify changes nothing and
// still answers 204, so that logout cannot be used to probe tokens.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	token, err := refreshCookieValue(r)
	if err != nil {
		return err
	}
	if token != "" {
		if err := s.sameSite(r); err != nil {
			return err
		}
	} else if r.ContentLength != 0 && r.Header.Get("Content-Type") != "" {
		var req refreshRequest
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
		token = req.RefreshToken
	}
	if token == "" {
		return errMissingRefresh
	}
	err = s.e.Logout(r.Context(), token, s.device(r, "", ""))
	if err != nil && !isTokenError(err) {
		return err
	}
	s.clearRefreshCookie(w, r)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// authed requires a valid access token: signature and claims offline, then
// token version, active user and live session in one read.
func (s *Server) authed(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tok, ok := bearer(r)
		if !ok {
			return errNotAuthenticated
		}
		p, err := s.e.Authenticate(r.Context(), tok)
		if err != nil {
			return err
		}
		setUserID(r.Context(), p.User.ID.String())
		return h(w, r.WithContext(withPrincipal(r.Context(), p)))
	}
}

// admin requires an access token of a user whose STORED role is admin.
func (s *Server) admin(h handlerFunc) handlerFunc {
	return s.authed(func(w http.ResponseWriter, r *http.Request) error {
		if principalFrom(r.Context()).User.Role != latchkey.RoleAdmin {
			return errForbidden
		}
		return h(w, r)
	})
}

func (s *Server) logoutAll(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	n, err := s.e.LogoutAll(r.Context(), p.User.ID, s.device(r, "", ""))
	if err != nil {
		return err
	}
	s.clearRefreshCookie(w, r)
	return writeJSON(w, http.StatusOK, map[string]int{"revoked_sessions": n})
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, userJSON(principalFrom(r.Context()).User))
}

type changePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// changePassword needs the current password and ends the user's other
// sessions; the caller's own stays.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) error {
	var req changePasswordRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.CurrentPassword == "" {
		return &latchkey.ValidationError{Field: "current_password", Reason: "is required"}
	}
	p := principalFrom(r.Context())
	if err := s.limitPasswordCheck(r, p); err != nil {
		return err
	}
	if err := s.e.ChangePassword(r.Context(), p.User.ID, p.Claims.SessionID, req.CurrentPassword, req.NewPassword,
		s.device(r, "", "")); err != nil {
		// The engine names its argument "password"; the client sent
		// "new_password", and that is the field to point at.
		var ve *latchkey.ValidationError
		if errors.As(err, &ve) && ve.Field == "password" {
			return &latchkey.ValidationError{Field: "new_password", Reason: ve.Reason, Err: ve.Err}
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
