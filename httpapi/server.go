// Package httpapi serves the Latchkey engine over HTTP: the JSON API of
// DESIGN.md ("HTTP API") in browser cookie mode and mobile body mode, admin
// user management, RFC 7009 revocation and RFC 7662 introspection, JWKS,
// health, Prometheus metrics and the OpenAPI document. Errors are RFC 9457
// problem+json with a stable code.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchkey-dev/latchkey"
)

// Options configure a Server. The zero value is usable: production cookies,
// no trusted proxies, no CORS, in-process rate limits.
type Options struct {
	// Logger receives request logs and internal errors; default discard.
	Logger *slog.Logger
	// Dev lets the refresh cookie go without Secure when the request
	// arrived on a loopback address (plain http://localhost).
	Dev bool
	// AdminEmail, if set, makes the account registered with that email an
	// admin, as the original service did.
	AdminEmail string
	// TrustedProxies are the networks whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// CORSOrigins are the origins allowed to call the API from a browser,
	// credentials included. Cookie endpoints accept cross-site requests only
	// from these.
	CORSOrigins []string
	// MaxBodyBytes caps request bodies; default 64 KiB.
	MaxBodyBytes int64
	// IntrospectionSecret, if set, lets a resource server call
	// /oauth/introspect with "Authorization: Bearer <secret>" instead of an
	// admin access token.
	IntrospectionSecret string
	// Limiter enforces rate limits; default in-process (NewMemoryLimiter).
	Limiter Limiter
	// Limits are the rate limits; zero fields take DefaultLimits' values.
	Limits Limits
	// Registry receives the metrics; default a new registry, served at
	// /metrics.
	Registry *prometheus.Registry
	// JWKSMaxAge is the JWKS's Cache-Control max-age; default 5 minutes. It
	// must not exceed the engine's KeyPublishLead.
	JWKSMaxAge time.Duration
}

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	e        *latchkey.Engine
	opts     Options
	log      *slog.Logger
	mux      *http.ServeMux
	handler  http.Handler
	limiter  Limiter
	fallback *MemoryLimiter // decides while limiter fails
	limits   Limits
	metrics  *metrics
	routes   []string
	keys     keyReloader
}

// New returns the API for engine e.
func New(e *latchkey.Engine, opts Options) (*Server, error) {
	if e == nil {
		return nil, errors.New("httpapi: nil engine")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 64 << 10
	}
	if opts.JWKSMaxAge <= 0 {
		opts.JWKSMaxAge = 5 * time.Minute
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	s := &Server{e: e, opts: opts, log: opts.Logger, mux: http.NewServeMux(), limits: opts.Limits.withDefaults()}
	s.limiter, s.fallback = opts.Limiter, NewMemoryLimiter()
	if s.limiter == nil {
		s.limiter = s.fallback
	}
	m, err := newMetrics(opts.Registry, e)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.keys = keyReloader{e: e}
	s.registerRoutes()
	s.handler = s.middleware(s.mux)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Routes lists the registered route patterns ("METHOD /path"), for the
// OpenAPI coverage test.
func (s *Server) Routes() []string { return append([]string(nil), s.routes...) }

// handlerFunc is a handler that returns its error to one central writer
// (supabase/auth's pattern), so that every failure becomes problem+json.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(pattern string, h handlerFunc) {
	s.routes = append(s.routes, pattern)
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}))
}

func (s *Server) registerRoutes() {
	s.handle("POST /v1/users", s.register)
	s.handle("GET /v1/users/{id}", s.authed(s.getUser))
	s.handle("PATCH /v1/users/me", s.authed(s.patchMe))

	s.handle("POST /v1/auth/login", s.login(latchkey.ModeCookie))
	s.handle("POST /v1/auth/login-mobile", s.login(latchkey.ModeMobile))
	s.handle("POST /v1/auth/refresh", s.refreshCookie)
	s.handle("POST /v1/auth/refresh-mobile", s.refreshMobile)
	s.handle("POST /v1/auth/logout", s.logout)
	s.handle("POST /v1/auth/logout-all", s.authed(s.logoutAll))
	s.handle("GET /v1/auth/me", s.authed(s.me))
	s.handle("POST /v1/auth/change-password", s.authed(s.changePassword))
	s.handle("GET /v1/auth/sessions", s.authed(s.listSessions))
	s.handle("DELETE /v1/auth/sessions/{id}", s.authed(s.deleteSession))
	s.handle("DELETE /v1/auth/sessions", s.authed(s.deleteOtherSessions))
	s.handle("GET /v1/auth/revocations", s.revocations)

	s.handle("GET /v1/admin/users", s.admin(s.adminListUsers))
	s.handle("POST /v1/admin/users", s.admin(s.adminCreateUser))
	s.handle("GET /v1/admin/users/{id}", s.admin(s.adminGetUser))
	s.handle("PATCH /v1/admin/users/{id}", s.admin(s.adminPatchUser))
	s.handle("DELETE /v1/admin/users/{id}", s.admin(s.adminDeleteUser))

	s.handle("POST /oauth/revoke", s.oauthRevoke)
	s.handle("POST /oauth/introspect", s.oauthIntrospect)

	s.handle("GET /.well-known/jwks.json", s.jwks)
	s.handle("GET /health", s.health)
	s.handle("GET /health/ready", s.ready)
	s.handle("GET /openapi.json", s.openAPI)
	s.routes = append(s.routes, "GET /metrics")
	s.mux.Handle("GET /metrics", s.metrics.handler())
}

// ctxKey keys request-scoped values.
type ctxKey int

const principalKey ctxKey = iota

func withPrincipal(ctx context.Context, p *latchkey.Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

func principalFrom(ctx context.Context) *latchkey.Principal {
	p, _ := ctx.Value(principalKey).(*latchkey.Principal)
	return p
}
