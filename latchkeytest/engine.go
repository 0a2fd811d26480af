package latchkeytest

import (
	"crypto/rand"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/store/sqlite"
)

// Engine is a latchkey.Engine on a temporary SQLite database, with the
// clock, store and file it runs on.
type Engine struct {
	*latchkey.Engine
	// Clock is the engine's clock; advance it to expire tokens and leave
	// grace windows.
	Clock *Clock
	// Store is the SQLite store under the engine.
	Store *sqlite.Store
	// Path is the database file.
	Path string
	// MasterKey is the engine's master key, for opening a second engine on
	// the same database.
	MasterKey []byte

	users atomic.Int64
	spent sync.Map // session id → []string
}

// Clock is a manual clock, safe for concurrent use. It starts at a fixed
// instant so that test output does not depend on the day it runs.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Start is the instant every new Clock shows.
var Start = time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC)

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d (which may be negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// CheapPasswordParams are the argon2id parameters NewEngine uses unless
// asked for StrongPasswords: fast, and useless outside tests.
var CheapPasswordParams = latchkey.PasswordParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}

// EngineOption configures NewEngine.
type EngineOption func(*engineConfig)

// engineConfig is what EngineOptions change.
type engineConfig struct {
	cfg latchkey.Config
}

// WithConfig adjusts the engine's configuration before it is built. The
// master key and the clock are set already; replacing them is allowed.
func WithConfig(f func(*latchkey.Config)) EngineOption {
	return func(c *engineConfig) { f(&c.cfg) }
}

// StrongPasswords uses the production argon2id parameters instead of the
// cheap test ones.
func StrongPasswords() EngineOption {
	return func(c *engineConfig) { c.cfg.PasswordParams = latchkey.DefaultPasswordParams }
}

// NewEngine returns an engine on a fresh SQLite file in tb's temporary
// directory, with a fresh master key, a manual clock at Start and cheap
// password hashing. The store is closed when the test ends.
func NewEngine(tb testing.TB, opts ...EngineOption) *Engine {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "latchkey.db")
	st, err := sqlite.Open(tb.Context(), path, sqlite.Options{})
	if err != nil {
		tb.Fatalf("latchkeytest: open store: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	clock := &Clock{now: Start}
	key := make([]byte, latchkey.MasterKeySize)
	rand.Read(key)
	// A deep hashing queue: parallel tests creating users should wait, not
	// see ErrOverloaded.
	c := &engineConfig{cfg: latchkey.Config{MasterKey: key, PasswordParams: CheapPasswordParams, Now: clock.Now,
		HashQueue: 1024}}
	for _, o := range opts {
		o(c)
	}
	master := append([]byte(nil), c.cfg.MasterKey...)
	e, err := latchkey.New(tb.Context(), st, c.cfg)
	if err != nil {
		tb.Fatalf("latchkeytest: new engine: %v", err)
	}
	return &Engine{Engine: e, Clock: clock, Store: st, Path: path, MasterKey: master}
}
