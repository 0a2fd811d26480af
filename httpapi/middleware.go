package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

type reqInfo struct {
	id     string
	code   string // the problem code, for the log line
	userID string // the authenticated caller, for the log line
}

const reqInfoKey ctxKey = 100

func requestID(ctx context.Context) string {
	if ri, _ := ctx.Value(reqInfoKey).(*reqInfo); ri != nil {
		return ri.id
	}
	return ""
}

func setErrorCode(ctx context.Context, code string) {
	if ri, _ := ctx.Value(reqInfoKey).(*reqInfo); ri != nil {
		ri.code = code
	}
}

// setUserID records the authenticated caller for the log line: handlers see
// the principal in a derived context that the middleware cannot.
func setUserID(ctx context.Context, id string) {
	if ri, _ := ctx.Value(reqInfoKey).(*reqInfo); ri != nil {
		ri.userID = id
	}
}

// statusWriter remembers the status code for logs and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// validRequestID accepts a caller's X-Request-ID only if it is short and
// plain, so that it cannot inject into logs.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// middleware wraps the mux: request id, security headers, CORS, body cap,
// panics recovered, unknown routes as problem+json, one log line and the
// metrics per request.
func (s *Server) middleware(next *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &reqInfo{id: r.Header.Get("X-Request-ID")}
		if !validRequestID(ri.id) {
			b := make([]byte, 12)
			rand.Read(b)
			ri.id = hex.EncodeToString(b)
		}
		r = r.WithContext(context.WithValue(r.Context(), reqInfoKey, ri))
		sw := &statusWriter{ResponseWriter: w}
		h := sw.Header()
		h.Set("X-Request-ID", ri.id)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		r.Body = http.MaxBytesReader(sw, r.Body, s.opts.MaxBodyBytes)

		_, pattern := next.Handler(r)
		route := pattern
		if route == "" {
			route = "unmatched"
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic", "request_id", ri.id, "route", route, "panic", v)
				if sw.status == 0 {
					s.writeError(sw, r, errorf(http.StatusInternalServerError, "internal_error", "Internal error"))
				}
			}
			d := time.Since(start)
			s.metrics.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
			s.metrics.latency.WithLabelValues(route).Observe(d.Seconds())
			attrs := []any{"request_id", ri.id, "method", r.Method, "route", route, "status", sw.status,
				"duration_ms", float64(d.Microseconds()) / 1000, "ip", s.clientIP(r)}
			if ri.code != "" {
				attrs = append(attrs, "code", ri.code)
			}
			if ri.userID != "" {
				attrs = append(attrs, "user_id", ri.userID)
			}
			s.log.InfoContext(r.Context(), "request", attrs...)
		}()

		if s.cors(sw, r) {
			return
		}
		if pattern == "" {
			s.unmatched(sw, r, next)
			return
		}
		next.ServeHTTP(sw, r)
	})
}

// unmatched turns the mux's plain-text 404 and 405 into problem+json,
// keeping its Allow header.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request, mux *http.ServeMux) {
	rec := &headerOnly{h: http.Header{}}
	h, _ := mux.Handler(r)
	h.ServeHTTP(rec, r)
	if allow := rec.h.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	if rec.status == http.StatusMethodNotAllowed {
		s.writeError(w, r, errorf(http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed"))
		return
	}
	s.writeError(w, r, errNotFound)
}

// headerOnly captures a handler's status and headers and drops its body.
type headerOnly struct {
	h      http.Header
	status int
}

func (h *headerOnly) Header() http.Header         { return h.h }
func (h *headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerOnly) WriteHeader(code int)        { h.status = code }

// cors answers preflights and sets the CORS headers for allowed origins. It
// reports whether the request has been answered.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	if len(s.opts.CORSOrigins) == 0 {
		return false
	}
	// Every answer depends on Origin once CORS is on, including those to
	// other origins or none: a shared cache must not hand a response made
	// without the CORS headers (a cacheable JWKS, say) to an allowed origin.
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" || !slices.Contains(s.opts.CORSOrigins, origin) {
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-ID, X-Device-ID, X-Device-Name")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// sameSite refuses cross-site requests to the cookie endpoints (the cookie
// is SameSite=Strict already; this also covers browsers that send it
// anyway and same-site subdomains): Sec-Fetch-Site must not be cross-site,
// and an Origin, when sent, must be this server's or an allowed CORS origin.
func (s *Server) sameSite(r *http.Request) error {
	origin := r.Header.Get("Origin")
	allowed := origin != "" && slices.Contains(s.opts.CORSOrigins, origin)
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" && !allowed {
		return errCrossSite
	}
	if origin != "" && !allowed {
		u, err := url.Parse(origin)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return errCrossSite
		}
	}
	return nil
}
