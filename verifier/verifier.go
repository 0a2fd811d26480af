package verifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
)

// errRedirect refuses redirects of the JWKS and feed fetches.
var errRedirect = errors.New("verifier: redirects are not followed")

// Errors Verify returns; test with errors.Is. The first three mean the
// caller must present another token (401); ErrUnavailable means the verifier
// cannot decide right now (503).
var (
	// ErrInvalidToken: malformed, badly signed, signed with an unknown key,
	// wrong typ, issuer or audience, or missing a required claim.
	ErrInvalidToken = errors.New("verifier: invalid access token")
	// ErrExpiredToken: the token's exp has passed, beyond the leeway.
	ErrExpiredToken = errors.New("verifier: access token expired")
	// ErrRevokedSession: the token is valid but its session has ended, as
	// the revocation feed reported.
	ErrRevokedSession = errors.New("verifier: session revoked")
	// ErrUnavailable: the keys could not be fetched, or the revocation feed
	// is configured but has not been read yet.
	ErrUnavailable = errors.New("verifier: cannot verify tokens now")
	// ErrNoFeed is returned by PollOnce and Run when no revocation feed is
	// configured.
	ErrNoFeed = errors.New("verifier: no revocation feed configured")
)

// Roles a Latchkey access token carries in its role claim.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// Defaults and bounds of Options.
const (
	// DefaultLeeway is the clock skew allowed on exp, nbf and iat; MaxLeeway
	// is the most Options.Leeway may be (RFC 8725 asks for a small one).
	DefaultLeeway = 5 * time.Second
	MaxLeeway     = time.Minute
	// DefaultMinRefetchInterval rate-limits JWKS refetches caused by unknown
	// key ids (and retries after a failed refresh): at most two fetches a
	// minute however many forged kids arrive, while a key the server
	// started using without publishing it first is picked up within 30 s.
	DefaultMinRefetchInterval = 30 * time.Second
	// DefaultPollInterval is how often Run reads the revocation feed.
	DefaultPollInterval = 5 * time.Second
	// DefaultMaxTokenLifetime is the longest access-token lifetime (exp −
	// iat) accepted, and how long a revoked session is remembered; Latchkey
	// issues 15-minute tokens by default.
	DefaultMaxTokenLifetime = time.Hour
)

// maxTokenLen bounds a token before any parsing work (Latchkey's are a few
// hundred bytes).
const maxTokenLen = 4096

// fetchTimeout bounds each JWKS or feed request, whatever the HTTP client's
// own timeout.
const fetchTimeout = 10 * time.Second

// Options configure a Verifier. Issuer and Audience are required.
type Options struct {
	// Issuer and Audience must equal the token's iss and one of its aud
	// values exactly (Latchkey's Config.Issuer and Config.Audience, both
	// "latchkey" by default).
	Issuer   string
	Audience string
	// HTTPClient fetches the JWKS and the feed; default a client with a
	// 10 s timeout.
	HTTPClient *http.Client
	// Leeway is the clock skew allowed on exp, nbf and iat; default
	// DefaultLeeway, at most MaxLeeway.
	Leeway time.Duration
	// Now is the clock; default time.Now. Token times, the key cache's
	// lifetime, refetch rate limits and revocation memory all use it, so a
	// test can drive them with a manual clock.
	Now func() time.Time
	// MinRefetchInterval is the least time between two JWKS fetches caused
	// by unknown key ids or retrying a failed refresh; default
	// DefaultMinRefetchInterval, at least one second.
	MinRefetchInterval time.Duration
	// RevocationFeedURL, if set, is Latchkey's revocation feed
	// (https://auth.example.com/v1/auth/revocations); RevocationFeedToken
	// is the bearer credential for it, normally the server's introspection
	// secret. See Run and PollOnce.
	RevocationFeedURL   string
	RevocationFeedToken string
	// PollInterval is how often Run reads the feed; default
	// DefaultPollInterval.
	PollInterval time.Duration
	// MaxFeedStaleness is how long Verify keeps trusting what the feed last
	// said when polls fail: past it, Verify answers ErrUnavailable rather
	// than silently stop seeing revocations (an outage, or someone blocking
	// the feed). Default 12 × PollInterval.
	MaxFeedStaleness time.Duration
	// MaxTokenLifetime must be at least the server's access-token lifetime:
	// tokens living longer are refused, and a revoked session is remembered
	// for this long after its revocation. Default DefaultMaxTokenLifetime.
	MaxTokenLifetime time.Duration
	// AllowHTTP permits plain-http URLs for hosts other than loopback ones.
	// Without TLS anyone on the path could substitute signing keys or read
	// the feed's credential, so it is off by default.
	AllowHTTP bool
	// Logger receives fetch and poll failures; never tokens. Default
	// discard.
	Logger *slog.Logger
}

// LogValue keeps the feed credential out of logs.
func (o Options) LogValue() slog.Value {
	token := ""
	if o.RevocationFeedToken != "" {
		token = "[redacted]"
	}
	return slog.GroupValue(slog.String("issuer", o.Issuer), slog.String("audience", o.Audience),
		slog.String("revocation_feed_url", o.RevocationFeedURL), slog.String("revocation_feed_token", token))
}

// Claims are the claims of a verified Latchkey access token (RFC 9068 §2.2).
type Claims struct {
	UserID       uuid.UUID // sub
	SessionID    uuid.UUID // sid
	Role         string    // role when the token was issued; see the package doc
	ClientID     string    // client_id
	TokenVersion int64     // token_version
	IssuedAt     time.Time // iat
	ExpiresAt    time.Time // exp
	ID           string    // jti
	KeyID        string    // kid of the key that signed it
}

// Verifier checks Latchkey access tokens offline. It is safe for concurrent
// use.
type Verifier struct {
	issuer, audience string
	leeway           time.Duration
	maxLifetime      time.Duration
	now              func() time.Time
	log              *slog.Logger
	keys             *keyCache
	feed             *feed // nil without a revocation feed

	revMu    sync.RWMutex
	revoked  map[uuid.UUID]time.Time // session id → when its tokens are all expired
	synced   bool                    // the feed has been read to its end once
	syncedAt time.Time               // when it was last read to its end
	maxStale time.Duration           // Options.MaxFeedStaleness
}

// New returns a Verifier trusting the keys published at jwksURL. It does no
// I/O: keys are fetched by the first Verify or by FetchKeys, and the feed is
// read by Run or PollOnce.
func New(jwksURL string, opts Options) (*Verifier, error) {
	if opts.Issuer == "" || opts.Audience == "" {
		return nil, errors.New("verifier: Options.Issuer and Options.Audience are required")
	}
	ju, err := checkURL(jwksURL, opts.AllowHTTP)
	if err != nil {
		return nil, fmt.Errorf("verifier: JWKS URL: %w", err)
	}
	switch {
	case opts.Leeway < 0 || opts.Leeway > MaxLeeway:
		return nil, fmt.Errorf("verifier: Options.Leeway must be between 0 and %s", MaxLeeway)
	case opts.Leeway == 0:
		opts.Leeway = DefaultLeeway
	}
	if opts.MinRefetchInterval == 0 {
		opts.MinRefetchInterval = DefaultMinRefetchInterval
	}
	if opts.MinRefetchInterval < time.Second {
		return nil, errors.New("verifier: Options.MinRefetchInterval must be at least 1s")
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.MaxTokenLifetime == 0 {
		opts.MaxTokenLifetime = DefaultMaxTokenLifetime
	}
	if opts.MaxFeedStaleness == 0 {
		opts.MaxFeedStaleness = 12 * opts.PollInterval
	}
	if opts.PollInterval < 0 || opts.MaxTokenLifetime < 0 || opts.MaxFeedStaleness < 0 {
		return nil, errors.New("verifier: Options.PollInterval and Options.MaxTokenLifetime must be positive")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: fetchTimeout}
	}
	// Never follow a redirect: one to http:// or another host would send
	// the feed's bearer token in the clear, or let whoever answers there
	// choose the keys (RFC 8725 §3.2). A copy, so the caller's client is
	// left as it is.
	c := *opts.HTTPClient
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return errRedirect }
	opts.HTTPClient = &c
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{issuer: opts.Issuer, audience: opts.Audience, leeway: opts.Leeway,
		maxLifetime: opts.MaxTokenLifetime, now: opts.Now, log: opts.Logger, revoked: map[uuid.UUID]time.Time{},
		maxStale: opts.MaxFeedStaleness}
	v.keys = &keyCache{url: ju.String(), client: opts.HTTPClient, minGap: opts.MinRefetchInterval,
		now: opts.Now, log: opts.Logger}
	if opts.RevocationFeedURL != "" {
		fu, err := checkURL(opts.RevocationFeedURL, opts.AllowHTTP)
		if err != nil {
			return nil, fmt.Errorf("verifier: revocation feed URL: %w", err)
		}
		if opts.RevocationFeedToken == "" {
			return nil, errors.New("verifier: Options.RevocationFeedToken is required with a revocation feed")
		}
		v.feed = newFeed(fu, opts.RevocationFeedToken, opts.HTTPClient, opts.PollInterval)
	} else if opts.RevocationFeedToken != "" {
		return nil, errors.New("verifier: Options.RevocationFeedToken given without a RevocationFeedURL")
	}
	return v, nil
}

// checkURL accepts https URLs, and http ones for loopback hosts or when
// allowed explicitly.
func checkURL(raw string, allowHTTP bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowHTTP && !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("%q: plain http is allowed only for loopback hosts (see Options.AllowHTTP)", raw)
		}
	default:
		return nil, fmt.Errorf("%q: scheme must be https", raw)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// accessClaims are the claims go-jose's jwt.Claims does not cover.
type accessClaims struct {
	ClientID     string `json:"client_id"`
	SessionID    string `json:"sid"`
	TokenVersion int64  `json:"token_version"`
	Role         string `json:"role"`
}

// Verify checks an access token and returns its claims. It returns
// ErrInvalidToken, ErrExpiredToken, ErrRevokedSession or ErrUnavailable
// (each possibly wrapped with a reason; test with errors.Is). ctx bounds
// waiting for a key fetch.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if token == "" || len(token) > maxTokenLen {
		return nil, ErrInvalidToken
	}
	// RFC 8725 §3.1: the only algorithm accepted is the one Latchkey signs
	// with; "none" and HMAC (a public key used as an HMAC secret) fail here.
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil || len(tok.Headers) != 1 {
		return nil, ErrInvalidToken
	}
	h := tok.Headers[0]
	if h.Algorithm != string(jose.EdDSA) || h.KeyID == "" {
		return nil, ErrInvalidToken
	}
	// RFC 9068 §4 and RFC 8725 §3.11: explicit typing, so that an ID token
	// or another JWT signed by the same key is not taken for an access token.
	// Media types compare case-insensitively; "application/" may be given.
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if t := strings.ToLower(typ); t != "at+jwt" && t != "application/at+jwt" {
		return nil, fmt.Errorf("%w: typ %q", ErrInvalidToken, typ)
	}
	// RFC 8725 §3.2: the key is the one the kid names, never one the token
	// carries or points to.
	key, err := v.keys.key(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	var std jwt.Claims
	var ac accessClaims
	if err := tok.Claims(key, &std, &ac); err != nil {
		return nil, fmt.Errorf("%w: signature", ErrInvalidToken)
	}
	if std.Expiry == nil || std.IssuedAt == nil || std.ID == "" {
		return nil, fmt.Errorf("%w: exp, iat and jti are required", ErrInvalidToken)
	}
	now := v.now()
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: v.issuer, AnyAudience: jwt.Audience{v.audience}, Time: now}, v.leeway)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return nil, ErrExpiredToken
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	iat, exp := std.IssuedAt.Time().UTC(), std.Expiry.Time().UTC()
	if exp.Sub(iat) > v.maxLifetime {
		// Revocations are remembered for maxLifetime only; a longer-lived
		// token could outlive the memory of its session's revocation.
		v.log.WarnContext(ctx, "verifier: token lifetime exceeds Options.MaxTokenLifetime",
			"lifetime", exp.Sub(iat).String(), "max", v.maxLifetime.String())
		return nil, fmt.Errorf("%w: lifetime exceeds MaxTokenLifetime", ErrInvalidToken)
	}
	uid, err1 := uuid.Parse(std.Subject)
	sid, err2 := uuid.Parse(ac.SessionID)
	if err1 != nil || err2 != nil || ac.Role == "" {
		return nil, fmt.Errorf("%w: sub, sid and role are required", ErrInvalidToken)
	}
	if err := v.checkSession(sid); err != nil {
		return nil, err
	}
	return &Claims{UserID: uid, SessionID: sid, Role: ac.Role, ClientID: ac.ClientID, TokenVersion: ac.TokenVersion,
		IssuedAt: iat, ExpiresAt: exp, ID: std.ID, KeyID: h.KeyID}, nil
}

// checkSession consults what the revocation feed has said, if there is one.
func (v *Verifier) checkSession(sid uuid.UUID) error {
	if v.feed == nil {
		return nil
	}
	v.revMu.RLock()
	defer v.revMu.RUnlock()
	if !v.synced {
		return fmt.Errorf("%w: the revocation feed has not been read yet", ErrUnavailable)
	}
	if age := v.now().Sub(v.syncedAt); age > v.maxStale {
		return fmt.Errorf("%w: the revocation feed was last read %s ago", ErrUnavailable, age.Round(time.Second))
	}
	if _, ok := v.revoked[sid]; ok {
		return ErrRevokedSession
	}
	return nil
}

// FetchKeys fetches the JWKS now, whatever the cache holds, and returns the
// error if that fails (the keys held before are kept). Call it at start-up
// to fail fast on a wrong URL; Verify does not need it.
func (v *Verifier) FetchKeys(ctx context.Context) error {
	return v.keys.refresh(ctx)
}
