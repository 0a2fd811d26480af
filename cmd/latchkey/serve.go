package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/store/sqlite"
)

// shutdownTimeout is how long requests in flight get to finish after SIGINT
// or SIGTERM.
const shutdownTimeout = 10 * time.Second

// maxGraceText is latchkey.MaxGrace as the help and errors write it.
var maxGraceText = fmt.Sprintf("%ds", int(latchkey.MaxGrace/time.Second))

func serveCommand() *command {
	return &command{
		name:    "serve",
		summary: "run the HTTP server",
		help: `Serve Latchkey over HTTP. This build answers GET /health and
GET /.well-known/jwks.json; the /v1 API is not built yet.

serve opens the database (applying migrations unless --migrate=false),
loads its signing and token keys (creating them on the first start), listens
on --addr and prints "latchkey listening on http://HOST:PORT" to standard
output. SIGINT or SIGTERM stops it gracefully: requests in flight get up to
` + shutdownTimeout.String() + `. Logs go to standard error.

Master key: the keys stored in the database are encrypted with a 32-byte
master key that is never stored there. serve reads it from the file named by
--master-key-file, else from LATCHKEY_MASTER_KEY (the key itself, base64).
With neither, for SQLite, serve keeps it in a file named after the database
(not beside it, so that one backup does not hold both) in
    ` + keyDirForHelp() + `
creating the file (mode 0600) on the first start and reusing it afterwards.
Key files that group or others can access are refused. Losing the key makes
the database unusable: back it up, apart from the database.`,
		options: []option{
			{name: "addr", arg: "HOST:PORT", env: "LATCHKEY_ADDR", def: "127.0.0.1:8080",
				usage: "Address to listen on. Port 0 picks a free port."},
			databaseOption,
			{name: "master-key-file", arg: "PATH",
				usage: `File holding the base64 master key (mode 0600 or stricter). Without it,
LATCHKEY_MASTER_KEY holds the key itself; without either, see "Master key".`},
			{name: "admin-email", arg: "EMAIL", env: "LATCHKEY_ADMIN_EMAIL",
				usage: "Email of the first admin. Checked to be an email address; not used yet."},
			{name: "access-ttl", arg: "DURATION", env: "LATCHKEY_ACCESS_TTL", def: "15m",
				usage: "Lifetime of access tokens."},
			{name: "refresh-idle-ttl", arg: "DURATION", env: "LATCHKEY_REFRESH_IDLE_TTL", def: "168h",
				usage: `How long a refresh token stays valid unused; each refresh renews it, never
past the session's absolute deadline.`},
			{name: "session-max-age", arg: "DURATION", env: "LATCHKEY_SESSION_MAX_AGE", def: "720h",
				usage: "Absolute lifetime of a session, from sign-in."},
			{name: "grace", arg: "DURATION", env: "LATCHKEY_GRACE", def: "10s",
				usage: `How long after a refresh the previous refresh token, presented again by the
same client, gets the current one instead of counting as reuse (concurrent
tabs, retries after a lost response). 0s to ` + maxGraceText + `; 0 disables it.`},
			{name: "dev", env: "LATCHKEY_DEV", def: "false",
				usage: "Development mode: human-readable text logs at debug level instead of JSON."},
			{name: "redis-url", arg: "URL", env: "LATCHKEY_REDIS_URL",
				usage: `Redis for shared rate limits (redis://, rediss:// or unix://). Accepted but
not used yet.`},
			{name: "migrate", def: "true",
				usage: `Apply pending migrations before serving. With --migrate=false a database
whose schema is older than this build is refused; run 'latchkey migrate'.`},
		},
		run: runServe,
	}
}

// keyDirForHelp names the directory of generated key files as it is on
// this machine.
func keyDirForHelp() string {
	if dir, err := os.UserConfigDir(); err == nil {
		return dir + string(os.PathSeparator) + "latchkey" + string(os.PathSeparator)
	}
	return "the user configuration directory (unknown here)"
}

// serveConfig is serve's validated configuration.
type serveConfig struct {
	addr           string
	db             database
	masterKey      []byte // nil: use the database's key file
	keySource      string // where masterKey came from, for messages
	adminEmail     string
	accessTTL      time.Duration
	refreshIdleTTL time.Duration
	sessionMaxAge  time.Duration
	grace          time.Duration // latchkey.GraceDisabled for 0
	dev            bool
	redisURL       string
	migrate        bool
}

// parseServeConfig validates every setting before anything is opened, so
// that a typo fails at once with exit status 2.
func parseServeConfig(s *settings) (*serveConfig, error) {
	cfg := &serveConfig{}
	var err error

	v, src := s.lookup("addr")
	if _, _, err := net.SplitHostPort(v); err != nil {
		return nil, usagef("invalid %s %q: want HOST:PORT, such as 127.0.0.1:8080", src, v)
	}
	cfg.addr = v

	if cfg.db, err = parseDatabaseURL(s.lookup("database-url")); err != nil {
		return nil, err
	}

	if cfg.accessTTL, err = s.positiveDuration("access-ttl"); err != nil {
		return nil, err
	}
	if cfg.refreshIdleTTL, err = s.positiveDuration("refresh-idle-ttl"); err != nil {
		return nil, err
	}
	if cfg.sessionMaxAge, err = s.positiveDuration("session-max-age"); err != nil {
		return nil, err
	}
	v, src = s.lookup("grace")
	g, err := time.ParseDuration(v)
	switch {
	case err != nil:
		return nil, usagef("invalid %s %q: not a duration (write it like 10s)", src, v)
	case g < 0 || g > latchkey.MaxGrace:
		return nil, usagef("invalid %s %q: must be between 0s and %s", src, v, maxGraceText)
	case g == 0:
		// In latchkey.Config a zero Grace means "the default"; the CLI's 0
		// means what it says.
		g = latchkey.GraceDisabled
	}
	cfg.grace = g

	if cfg.dev, err = s.bool("dev"); err != nil {
		return nil, err
	}
	if cfg.migrate, err = s.bool("migrate"); err != nil {
		return nil, err
	}

	v, src = s.lookup("admin-email")
	if v != "" {
		a, err := mail.ParseAddress(v)
		if err != nil || a.Name != "" || a.Address != v {
			return nil, usagef("invalid %s %q: not an email address", src, v)
		}
	}
	cfg.adminEmail = v

	v, src = s.lookup("redis-url")
	if v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			return nil, usagef("invalid %s %q: want a redis://, rediss:// or unix:// URL", src, redactURL(v))
		}
	}
	cfg.redisURL = v

	// The key file is read now, not after the database is opened, so that a
	// bad key fails before anything is created.
	if s.set["master-key-file"] {
		path := s.string("master-key-file")
		if path == "" {
			return nil, usagef("invalid --master-key-file: empty path")
		}
		if cfg.masterKey, err = readKeyFile(path); err != nil {
			return nil, err
		}
		cfg.keySource = "--master-key-file " + path
	} else if v := s.getenv("LATCHKEY_MASTER_KEY"); v != "" {
		if cfg.masterKey, err = decodeMasterKey(v); err != nil {
			return nil, usagef("invalid LATCHKEY_MASTER_KEY: %v; %s", err, masterKeyHint)
		}
		cfg.keySource = "LATCHKEY_MASTER_KEY"
	}
	return cfg, nil
}

func runServe(ctx context.Context, c *cli, s *settings) error {
	cfg, err := parseServeConfig(s)
	if err != nil {
		return err
	}
	logger := newLogger(c.stderr, cfg.dev)

	store, err := openStore(ctx, cfg.db, !cfg.migrate)
	if err != nil {
		return err
	}
	defer store.Close()
	current, latest, err := store.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	if current < latest {
		return fmt.Errorf("%s is at schema version %d but this build needs %d; run 'latchkey migrate' first", cfg.db.path, current, latest)
	}

	key, keySource := cfg.masterKey, cfg.keySource
	if key == nil {
		// Only SQLite gets here: PostgreSQL is refused by openStore, and
		// when it is built it must refuse to start without a key, since
		// there is no single machine to keep a key file on.
		k, path, created, err := loadOrCreateKeyFile(ctx, store, cfg.db.path)
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(c.stderr, "latchkey: created master key %s (keep it safe; losing it makes the database unusable)\n", path)
		}
		key, keySource = k, "key file "+path
	}

	engine, err := latchkey.New(ctx, store, latchkey.Config{
		MasterKey:      key,
		AccessTTL:      cfg.accessTTL,
		RefreshIdleTTL: cfg.refreshIdleTTL,
		SessionMaxAge:  cfg.sessionMaxAge,
		Grace:          cfg.grace,
		Logger:         logger,
	})
	if errors.Is(err, latchkey.ErrWrongMasterKey) {
		return fmt.Errorf("the master key from %s cannot decrypt the keys in %s: it is not the key this database was created with", keySource, cfg.db.path)
	}
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err // "listen tcp 127.0.0.1:8080: bind: address already in use"
	}
	srv := &http.Server{
		Handler: newHandler(engine),
		// Slow clients must not hold connections open: the header timeout
		// stops slowloris, the others bound a request and an idle keep-alive.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	logger.Info("latchkey started", "addr", ln.Addr().String(), "database", cfg.db.path,
		"schema_version", current, "master_key", keySource)
	fmt.Fprintf(c.stdout, "latchkey listening on http://%s\n", ln.Addr())
	fmt.Fprintln(c.stdout, "latchkey: creating the first admin ('latchkey user create --admin') is not built yet")

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	<-serveErr // http.ErrServerClosed
	logger.Info("stopped")
	return nil
}

// newLogger logs JSON, for log collectors, or text in development.
func newLogger(w io.Writer, dev bool) *slog.Logger {
	if dev {
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// openStore opens the store the database URL names.
func openStore(ctx context.Context, db database, skipMigrations bool) (*sqlite.Store, error) {
	if db.postgres {
		return nil, errors.New("PostgreSQL support is not built yet; use a sqlite: database URL for now")
	}
	// The database holds password hashes and the sealed keys: create it
	// readable by its owner only. SQLite gives the -wal and -shm files the
	// database file's mode.
	if f, err := os.OpenFile(db.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	}
	return sqlite.Open(ctx, db.path, sqlite.Options{SkipMigrations: skipMigrations})
}
