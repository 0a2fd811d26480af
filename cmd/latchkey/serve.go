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
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/httpapi"
	"github.com/latchkey-dev/latchkey/httpapi/redislimit"
	"github.com/redis/go-redis/v9"
)

// shutdownTimeout is how long requests in flight get to finish after SIGINT
// or SIGTERM.
const shutdownTimeout = 10 * time.Second

// maxGraceText is latchkey.MaxGrace as the help and errors write it.
var maxGraceText = fmt.Sprintf("%ds", int(latchkey.MaxGrace/time.Second))

// keyReloadInterval is how often serve rereads the keys, so that a signing
// or tag key added by 'latchkey keys rotate' in another process is loaded
// well before it activates (Config.KeyPublishLead, 5 minutes by default) and
// a revoked key stops being used within this interval.
const keyReloadInterval = 30 * time.Second

// jwksMaxAge is how long verifiers may cache /.well-known/jwks.json at most.
const jwksMaxAge = 5 * time.Minute

// minIntrospectionSecret is the shortest introspection secret accepted: it
// is a bearer credential checked online, so it needs at least 128 bits of
// entropy (ASVS V7), which 32 characters of base64 from a random source
// comfortably exceed.
const minIntrospectionSecret = 32

func serveCommand() *command {
	return &command{
		name:    "serve",
		summary: "run the HTTP server",
		help: `Serve the Latchkey HTTP API: the /v1 routes, /oauth/revoke,
/oauth/introspect, /.well-known/jwks.json, /health, /health/ready, /metrics
and /openapi.json.

serve opens the database (applying migrations unless --migrate=false),
loads its signing and token keys (creating them on the first start), listens
on --addr and prints "latchkey listening on http://HOST:PORT" to standard
output, followed, while the database has no users, by the command that
creates the first admin. It rereads the keys every ` + keyReloadInterval.String() + `, so that keys
added or revoked by 'latchkey keys' in another process take effect. SIGINT
or SIGTERM stops it gracefully: requests in flight get up to
` + shutdownTimeout.String() + `. Logs go to standard error.

Master key: the keys stored in the database are encrypted with a 32-byte
master key that is never stored there. serve reads it from the file named by
--master-key-file, else from LATCHKEY_MASTER_KEY (the key itself, base64).
With neither, for SQLite, serve keeps it in a file named after the database
(not beside it, so that one backup does not hold both) in
    ` + keyDirForHelp() + `
creating the file (mode 0600) on the first start and reusing it afterwards;
the other commands use the same file but never create it. Key files that
group or others can access are refused. Losing the key makes the database
unusable: back it up, apart from the database.`,
		options: []option{
			{name: "addr", arg: "HOST:PORT", env: "LATCHKEY_ADDR", def: "127.0.0.1:8080",
				usage: "Address to listen on. Port 0 picks a free port."},
			databaseOption,
			masterKeyOption,
			{name: "admin-email", arg: "EMAIL", env: "LATCHKEY_ADMIN_EMAIL",
				usage: `The account registered with this email through POST /v1/users becomes an
admin (compared without regard to case). Whoever registers it first gets
admin rights, so register it at once, or use 'latchkey user create --admin'.`},
			accessTTLOption,
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
				usage: `Development mode: human-readable text logs at debug level instead of JSON,
and the refresh cookie without Secure for requests that arrive on a
loopback address (plain http://localhost).`},
			{name: "trusted-proxies", arg: "CIDRS", env: "LATCHKEY_TRUSTED_PROXIES",
				usage: `Comma-separated networks or addresses of reverse proxies (10.0.0.0/8,
192.0.2.7, fd00::/8) whose X-Forwarded-For is believed for the client
address used by rate limits and security events. Default none: the peer
address is the client's.`},
			{name: "cors-origins", arg: "ORIGINS", env: "LATCHKEY_CORS_ORIGINS",
				usage: `Comma-separated origins (scheme://host[:port], no path, such as
https://app.example.com) allowed to call the API from a browser with
credentials. Cookie endpoints refuse cross-site requests from anyone else.
Default none.`},
			{name: "introspection-secret-file", arg: "PATH", secretEnv: "LATCHKEY_INTROSPECTION_SECRET",
				usage: `File holding a secret (at least ` + fmt.Sprint(minIntrospectionSecret) + ` characters, such as the output of
'openssl rand -base64 32'; mode 0600 or stricter) that lets resource
servers call POST /oauth/introspect with "Authorization: Bearer SECRET"
instead of an admin access token. Without it, LATCHKEY_INTROSPECTION_SECRET
holds the secret itself. Default none: introspection needs an admin token.`},
			{name: "redis-url", arg: "URL", env: "LATCHKEY_REDIS_URL",
				usage: `Redis for shared rate limits (redis://, rediss:// or unix://), so that
every instance enforces one limit per client and account. Default none: each
process keeps its own limits. serve refuses to start if Redis does not answer.`},
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
	addr                string
	db                  database
	masterKey           []byte // nil: use the database's key file
	keySource           string // where masterKey came from, for messages
	adminEmail          string
	accessTTL           time.Duration
	refreshIdleTTL      time.Duration
	sessionMaxAge       time.Duration
	grace               time.Duration // latchkey.GraceDisabled for 0
	dev                 bool
	trustedProxies      []netip.Prefix
	corsOrigins         []string
	introspectionSecret string
	redisURL            string
	migrate             bool
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

	if cfg.trustedProxies, err = parseTrustedProxies(s.lookup("trusted-proxies")); err != nil {
		return nil, err
	}
	if cfg.corsOrigins, err = parseOrigins(s.lookup("cors-origins")); err != nil {
		return nil, err
	}

	v, src = s.lookup("redis-url")
	if v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			return nil, usagef("invalid %s %q: want a redis://, rediss:// or unix:// URL", src, redactURL(v))
		}
	}
	cfg.redisURL = v

	// Secrets are read now, not after the database is opened, so that a bad
	// one fails before anything is created.
	secret, src, ok, err := s.secret("introspection-secret-file", "introspection secret file")
	if err != nil {
		return nil, err
	}
	if ok {
		// A trailing newline from a file or a here-document is not part of
		// the secret a resource server sends.
		cfg.introspectionSecret = strings.TrimSpace(string(secret))
		if n := utf8.RuneCountInString(cfg.introspectionSecret); n < minIntrospectionSecret {
			return nil, usagef("invalid introspection secret from %s: %d characters, want at least %d (such as the output of 'openssl rand -base64 32')",
				src, n, minIntrospectionSecret)
		}
	}
	if cfg.masterKey, cfg.keySource, err = masterKey(s); err != nil {
		return nil, err
	}
	if cfg.db.postgres && cfg.masterKey == nil {
		// Many instances share a PostgreSQL database: there is no one
		// machine to keep a key file on, so the key must be given.
		return nil, usagef("a PostgreSQL database needs the master key: set LATCHKEY_MASTER_KEY or --master-key-file")
	}
	return cfg, nil
}

// parseTrustedProxies parses a comma-separated list of CIDR networks and
// addresses; an address stands for itself alone.
func parseTrustedProxies(v, src string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var p netip.Prefix
		var err error
		if strings.Contains(item, "/") {
			p, err = netip.ParsePrefix(item)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(item); err == nil && a.Zone() == "" {
				// A zone (fe80::1%eth0) would be dropped here, and the
				// address would then match on every interface.
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil || !p.IsValid() {
			return nil, usagef("invalid %s: %q is not an IP address or CIDR network (write 10.0.0.0/8,192.0.2.7)", src, item)
		}
		// The server compares client addresses unmapped (::ffff:10.1.2.3 is
		// 10.1.2.3), so an IPv4-mapped network is written as IPv4 here.
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// parseOrigins parses a comma-separated list of web origins (RFC 6454) and
// returns them as browsers send them in the Origin header, which the server
// compares byte for byte: scheme and host in lower case, the default port
// left out.
func parseOrigins(v, src string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		bad := func(why string) error {
			return usagef("invalid %s: %q %s (write an origin like https://app.example.com)", src, item, why)
		}
		if item == "*" || item == "null" {
			// Credentials cannot be shared with any origin, nor with
			// sandboxed documents and file:// pages, which send "null".
			return nil, bad("is not allowed: name each origin")
		}
		u, err := url.Parse(item)
		if err != nil || !u.IsAbs() || u.Opaque != "" {
			return nil, bad("is not an origin")
		}
		if u.Scheme != "https" && u.Scheme != "http" {
			return nil, bad("is not an http or https origin")
		}
		if u.Hostname() == "" {
			return nil, bad("has no host")
		}
		if u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || strings.HasSuffix(item, "#") {
			return nil, bad("has more than scheme, host and port")
		}
		host, port := strings.ToLower(u.Hostname()), u.Port()
		if u.Port() == "" && strings.HasSuffix(u.Host, ":") {
			return nil, bad("has an empty port")
		}
		if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
			port = ""
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		origin := u.Scheme + "://" + host
		if port != "" {
			origin += ":" + port
		}
		out = append(out, origin)
	}
	return out, nil
}

func runServe(ctx context.Context, m *Main, s *settings) error {
	cfg, err := parseServeConfig(s)
	if err != nil {
		return err
	}
	logger := newLogger(m.Stderr, cfg.dev)

	store, err := openStore(ctx, cfg.db, !cfg.migrate)
	if err != nil {
		return err
	}
	m.onClose(store.Close)
	current, latest, err := store.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	if current < latest {
		return fmt.Errorf("%s is at schema version %d but this build needs %d; run 'latchkey migrate' first", cfg.db.name(), current, latest)
	}

	key, keySource := cfg.masterKey, cfg.keySource
	if key == nil {
		// Only SQLite gets here: parseServeConfig refuses PostgreSQL without
		// a key, since there is no single machine to keep a key file on.
		k, path, created, err := loadOrCreateKeyFile(ctx, store, cfg.db.path)
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(m.Stderr, "latchkey: created master key %s (keep it safe; losing it makes the database unusable)\n", path)
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
		return wrongKeyError(keySource, cfg.db.name())
	}
	if err != nil {
		return err
	}
	var limiter httpapi.Limiter
	if cfg.redisURL != "" {
		// go-redis logs to standard error on its own; route it to ours.
		redis.SetLogger(redisLogger{logger})
		l, client, err := redislimit.Open(ctx, cfg.redisURL)
		if err != nil {
			return fmt.Errorf("rate limits: %s: %w", redactURL(cfg.redisURL), errors.Unwrap(err))
		}
		defer client.Close()
		limiter = l
	}
	api, err := httpapi.New(engine, httpapi.Options{
		Limiter:             limiter,
		Logger:              logger,
		Dev:                 cfg.dev,
		AdminEmail:          cfg.adminEmail,
		TrustedProxies:      cfg.trustedProxies,
		CORSOrigins:         cfg.corsOrigins,
		IntrospectionSecret: cfg.introspectionSecret,
		// A new signing key is published Config.KeyPublishLead before it
		// signs; a cache that outlived the lead could meet a kid it has not
		// fetched.
		JWKSMaxAge: min(jwksMaxAge, engine.Config().KeyPublishLead),
	})
	if err != nil {
		return err
	}

	// Asked before listening, so that the hint follows the address at once
	// (a failure only loses the hint).
	_, users, err := engine.ListUsers(ctx, latchkey.UserQuery{Limit: 1})
	noUsers := err == nil && users == 0

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err // "listen tcp 127.0.0.1:8080: bind: address already in use"
	}
	srv := &http.Server{
		Handler: api,
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

	// The reloader stops, and is waited for, before Run returns and Close
	// closes the store under it.
	reloadCtx, stopReload := context.WithCancel(ctx)
	reloadDone := make(chan struct{})
	go func() {
		defer close(reloadDone)
		reloadKeys(reloadCtx, engine, logger, keyReloadInterval)
	}()
	defer func() { stopReload(); <-reloadDone }()

	logger.Info("latchkey started", "addr", ln.Addr().String(), "database", cfg.db.name(),
		"schema_version", current, "master_key", keySource,
		"trusted_proxies", len(cfg.trustedProxies), "cors_origins", len(cfg.corsOrigins),
		"introspection_secret", cfg.introspectionSecret != "")
	fmt.Fprintf(m.Stdout, "latchkey listening on http://%s\n", ln.Addr())
	if noUsers {
		fmt.Fprintf(m.Stdout, "latchkey: no users yet; create the first admin with: %s\n", firstAdminCommand(s, cfg))
	}

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

// reloadKeys rereads the engine's keys every interval until ctx is done. A
// failure keeps the keys already loaded and is logged: the next tick tries
// again.
func reloadKeys(ctx context.Context, e *latchkey.Engine, logger *slog.Logger, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.ReloadKeys(ctx); err != nil && ctx.Err() == nil {
				logger.Warn("reload keys", "err", err)
			}
		}
	}
}

// firstAdminCommand is the user create command line that reaches the
// database serve runs on, for the hint serve prints.
func firstAdminCommand(s *settings, cfg *serveConfig) string {
	cmd := "latchkey user create --admin --email EMAIL"
	switch {
	case cfg.db.postgres:
		cmd += " --database-url " + shellQuote(redactURL(cfg.db.url))
	case cfg.db.path != filepath.Clean(strings.TrimPrefix(databaseOption.def, "sqlite:")):
		cmd += " --database-url " + shellQuote("sqlite:"+cfg.db.path)
	}
	if s.set["master-key-file"] {
		cmd += " --master-key-file " + shellQuote(s.string("master-key-file"))
	}
	return cmd
}

// shellQuote quotes v for a POSIX shell when it needs quoting.
func shellQuote(v string) string {
	safe := v != "" && strings.IndexFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./:@%+=,-", r))
	}) < 0
	if safe {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// newLogger logs JSON, for log collectors, or text in development.
func newLogger(w io.Writer, dev bool) *slog.Logger {
	if dev {
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// redisLogger sends go-redis's own messages (connection retries) to the
// server's logger at debug level instead of standard error.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
