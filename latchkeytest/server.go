package latchkeytest

import (
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/httpapi"
)

// Server is the whole Latchkey HTTP API running in-process on a loopback
// port, over a temporary SQLite database.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:54321.
	URL string
	// Engine is the engine behind the API, with its clock and store.
	Engine *Engine
	// API is the handler, for its Routes.
	API *httpapi.Server
	// HTTP is the underlying test server.
	HTTP *httptest.Server
}

// ServerOption configures NewServer.
type ServerOption func(*serverConfig)

type serverConfig struct {
	engine []EngineOption
	api    []func(*httpapi.Options)
}

// WithEngine passes options to the server's NewEngine.
func WithEngine(opts ...EngineOption) ServerOption {
	return func(c *serverConfig) { c.engine = append(c.engine, opts...) }
}

// WithAPI adjusts the httpapi options (rate limits, CORS origins, admin
// email, …) before the server starts. Several WithAPI options apply in
// order.
func WithAPI(f func(*httpapi.Options)) ServerOption {
	return func(c *serverConfig) { c.api = append(c.api, f) }
}

// NewServer starts the API on httptest over NewEngine's temporary database
// and closes it when the test ends. Its engine's clock starts at the real
// time (so that /health/ready agrees with the database) and moves only when
// advanced. It runs in development mode, so the refresh cookie is sent
// without Secure over the loopback connection and an ordinary cookie jar
// keeps it.
func NewServer(tb testing.TB, opts ...ServerOption) *Server {
	tb.Helper()
	var c serverConfig
	for _, o := range opts {
		o(&c)
	}
	e := NewEngine(tb, c.engine...)
	// The server's clock starts at the real time, not Start: /health/ready
	// compares it with the database's and would report the skew.
	e.Clock.Set(time.Now().UTC().Truncate(time.Second))
	o := httpapi.Options{Dev: true}
	for _, f := range c.api {
		f(&o)
	}
	api, err := httpapi.New(e.Engine, o)
	if err != nil {
		tb.Fatalf("latchkeytest: httpapi.New: %v", err)
	}
	ts := httptest.NewServer(api)
	tb.Cleanup(ts.Close)
	return &Server{URL: ts.URL, Engine: e, API: api, HTTP: ts}
}

// Client returns an HTTP client with its own cookie jar, like one browser.
func (s *Server) Client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: s.HTTP.Client().Transport}
}
