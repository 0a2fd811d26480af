package latchkey

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"
)

// GraceDisabled, as Config.Grace, turns the grace window off: any second use
// of a rotated refresh token is treated as reuse.
const GraceDisabled time.Duration = -1

// DefaultKeyPublishLead is Config.KeyPublishLead's default.
const DefaultKeyPublishLead = 5 * time.Minute

// MaxGrace is the longest grace window Config accepts.
const MaxGrace = 60 * time.Second

// Config configures an Engine. Only MasterKey is required; every other zero
// field takes the default named in its comment.
type Config struct {
	// MasterKey (32 bytes) encrypts the signing, rotation and tag keys stored
	// in the database. It must not live in the database: a copy of the
	// database alone then lets nobody mint or refresh a token. The library
	// never reads it from the environment.
	MasterKey []byte

	// Issuer, Audience and ClientID go into access tokens' iss, aud and
	// client_id claims. Default "latchkey" each.
	Issuer   string
	Audience string
	ClientID string

	// AccessTTL is the access-token lifetime. Default 15 minutes.
	AccessTTL time.Duration
	// RefreshIdleTTL is how long a refresh token stays valid unused; each
	// rotation renews it, never past the absolute deadline. Default 7 days.
	RefreshIdleTTL time.Duration
	// SessionMaxAge is a session's absolute lifetime from sign-in. Default
	// 30 days.
	SessionMaxAge time.Duration
	// Grace is how long after a rotation the previous refresh token, presented
	// again by the same user agent and device, is answered with the current
	// one instead of being treated as reuse. Default 10 s, at most 60 s;
	// GraceDisabled turns it off.
	Grace time.Duration
	// KeyPublishLead is how long a new signing or tag key is published
	// before it is used: at least the JWKS cache lifetime and the interval at
	// which instances reload keys. Default 5 minutes.
	KeyPublishLead time.Duration
	// Leeway is the clock skew allowed when checking access-token times.
	// Default 5 s, at most 1 minute.
	Leeway time.Duration

	// PasswordParams are the argon2id costs. Default DefaultPasswordParams;
	// tests use cheaper ones.
	PasswordParams PasswordParams
	// HashWorkers bounds concurrent password hashes (default GOMAXPROCS) and
	// HashQueue how many more may wait (default 4 × HashWorkers).
	HashWorkers int
	HashQueue   int

	// SessionRetention is how long ended sessions are kept after their
	// absolute deadline (default 0: deleted at it). EventRetention is how long
	// security events are kept (default 90 days). CleanupBatch is the number
	// of rows Cleanup deletes per statement (default 1000).
	SessionRetention time.Duration
	EventRetention   time.Duration
	CleanupBatch     int

	// Now is the engine's clock; every deadline and grace decision uses it.
	// Default time.Now.
	Now func() time.Time
	// Logger receives operational logs (never tokens or passwords). Default:
	// discard.
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if len(c.MasterKey) == 0 {
		return invalid("master_key", "is required")
	}
	if len(c.MasterKey) != MasterKeySize {
		return invalid("master_key", fmt.Sprintf("must be %d bytes", MasterKeySize))
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Issuer, "latchkey")
	def(&c.Audience, "latchkey")
	def(&c.ClientID, "latchkey")
	dur := func(d *time.Duration, v time.Duration, name string) error {
		if *d == 0 {
			*d = v
		}
		if *d < 0 {
			return invalid(name, "must be positive")
		}
		return nil
	}
	if err := dur(&c.AccessTTL, 15*time.Minute, "access_ttl"); err != nil {
		return err
	}
	if err := dur(&c.RefreshIdleTTL, 7*24*time.Hour, "refresh_idle_ttl"); err != nil {
		return err
	}
	if err := dur(&c.SessionMaxAge, 30*24*time.Hour, "session_max_age"); err != nil {
		return err
	}
	if err := dur(&c.KeyPublishLead, DefaultKeyPublishLead, "key_publish_lead"); err != nil {
		return err
	}
	if err := dur(&c.EventRetention, 90*24*time.Hour, "event_retention"); err != nil {
		return err
	}
	if c.SessionRetention < 0 {
		return invalid("session_retention", "must not be negative")
	}
	switch {
	case c.Grace == 0:
		c.Grace = 10 * time.Second
	case c.Grace == GraceDisabled:
	case c.Grace < 0 || c.Grace > MaxGrace:
		return invalid("grace", "must be between 0 and 60s")
	}
	switch {
	case c.Leeway == 0:
		c.Leeway = 5 * time.Second
	case c.Leeway < 0 || c.Leeway > time.Minute:
		return invalid("leeway", "must be between 0 and 1m")
	}
	if c.PasswordParams == (PasswordParams{}) {
		c.PasswordParams = DefaultPasswordParams
	}
	if c.PasswordParams.MemoryKiB < 8 || c.PasswordParams.Iterations < 1 || c.PasswordParams.Parallelism < 1 {
		return invalid("password_params", "need memory >= 8 KiB, iterations >= 1, parallelism >= 1")
	}
	if c.HashWorkers < 0 || c.HashQueue < 0 {
		return invalid("hash_workers", "must not be negative")
	}
	if c.HashQueue == 0 {
		w := c.HashWorkers
		if w == 0 {
			w = runtime.GOMAXPROCS(0)
		}
		c.HashQueue = 4 * w
	}
	if c.CleanupBatch <= 0 {
		c.CleanupBatch = 1000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Engine is the refresh-token engine: it signs users in, rotates their
// refresh tokens, detects reuse and issues access tokens. It is safe for
// concurrent use; any number of engines (in one process or many) may share
// one store.
type Engine struct {
	store Store
	cfg   Config
	keys  *keyManager
	pool  *hashPool
	// dummyHash is made on first use, so that tools that never sign anyone
	// in (keys, cleanup) do not pay for a full-cost hash at start.
	dummyOnce sync.Once
	dummyHash string
	log       *slog.Logger
}

// New returns an engine on store, creating the signing, rotation and tag keys
// on first use. It returns a *ValidationError for a bad Config and an error
// matching ErrWrongMasterKey when the master key does not open the stored
// keys.
func New(ctx context.Context, store Store, cfg Config) (*Engine, error) {
	if store == nil {
		return nil, invalid("store", "is required")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	sealer, err := newSealer(cfg.MasterKey)
	if err != nil {
		return nil, err
	}
	e := &Engine{store: store, cfg: cfg, log: cfg.Logger,
		pool: newHashPool(cfg.HashWorkers, cfg.HashQueue)}
	e.cfg.MasterKey = nil // the sealer holds it; nothing else needs it
	e.keys = &keyManager{store: store, sealer: sealer, now: e.now}
	if err := e.keys.ensure(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// dummy returns the hash that unknown emails are checked against, so that a
// sign-in costs the same whether or not the account exists. It is made with
// the current parameters.
func (e *Engine) dummy() string {
	e.dummyOnce.Do(func() {
		b := make([]byte, 32)
		rand.Read(b)
		e.dummyHash = hashPassword(string(b), e.cfg.PasswordParams)
	})
	return e.dummyHash
}

// now reads the engine's clock at the precision the stores keep.
func (e *Engine) now() time.Time {
	return e.cfg.Now().UTC().Round(0).Truncate(time.Microsecond)
}

// Now returns the engine's clock reading, at the precision stores keep. A
// server computes expires_in and cookie lifetimes from it, so that they agree
// with the deadlines the engine decided.
func (e *Engine) Now() time.Time { return e.now() }

// Store returns the engine's store.
func (e *Engine) Store() Store { return e.store }

// Config returns the engine's configuration with defaults applied (the
// master key removed).
func (e *Engine) Config() Config { return e.cfg }

// JWKS returns the public signing keys, for /.well-known/jwks.json: keys
// about to be used, the current one, and retired ones whose access tokens may
// still be live.
func (e *Engine) JWKS() JWKS {
	return e.keys.current().jwks(e.now(), e.cfg.AccessTTL+e.cfg.Leeway)
}

// HashQueueDepth is the number of password hashes waiting for a worker.
func (e *Engine) HashQueueDepth() int { return e.pool.queueDepth() }

// ReloadKeys rereads the keys from the store, for example after
// `latchkey keys rotate` ran against the same database.
func (e *Engine) ReloadKeys(ctx context.Context) error { return e.keys.reload(ctx) }

// event appends a security event; a failure is logged, not returned, because
// the operation it describes has already happened.
func (e *Engine) event(ctx context.Context, ev *Event) {
	if ev.At.IsZero() {
		ev.At = e.now()
	}
	if err := e.store.AppendEvent(ctx, ev); err != nil {
		e.log.ErrorContext(ctx, "append security event", "kind", ev.Kind, "user_id", ev.UserID, "err", err)
	}
}

// Grant is what a sign-in or a refresh hands the client.
type Grant struct {
	AccessToken      Token
	AccessExpiresAt  time.Time
	RefreshToken     Token
	RefreshExpiresAt time.Time // the session's idle deadline
	UserID           uuid.UUID
	SessionID        uuid.UUID
	Role             Role
	// User and Session are set by Login; Refresh leaves them nil to stay one
	// round trip.
	User    *User
	Session *Session
}

// issueAccess signs an access token for the session. Its expiry is capped at
// the session's idle deadline (which never passes its absolute one): an
// offline verifier must not accept a token after its session has ended.
func (e *Engine) issueAccess(userID, sessionID uuid.UUID, role Role, version int64, now, sessionEnds time.Time) (Token, time.Time, error) {
	exp := minTime(now.Add(e.cfg.AccessTTL), sessionEnds)
	k := e.keys.current().signer(now)
	tok, err := signAccessToken(k, &AccessClaims{
		Issuer: e.cfg.Issuer, Audience: e.cfg.Audience, ClientID: e.cfg.ClientID,
		UserID: userID, SessionID: sessionID, ID: newJTI(), IssuedAt: now, ExpiresAt: exp,
		TokenVersion: version, Role: role,
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("latchkey: sign access token: %w", err)
	}
	return tok, exp, nil
}
