// Package enginetest holds the engine's rotation, concurrency and
// authentication tests as a suite that takes a store factory, so that every
// backend (SQLite now, PostgreSQL next) runs them unchanged.
package enginetest

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
)

// Open returns a fresh, empty store; it registers its own cleanup.
type Open func(tb testing.TB) latchkey.Store

// Env is one test's engine on a spied store with a settable clock.
type Env struct {
	T      testing.TB
	Ctx    context.Context
	Store  latchkey.Store // the backend itself
	Spy    *Spy           // what the engine talks to
	Clock  *Clock
	Engine *latchkey.Engine
	// Config is the engine's configuration, master key included, for a
	// second engine on the same store.
	Config latchkey.Config
}

// CheapPasswords keeps argon2id fast in tests; production uses the default.
var CheapPasswords = latchkey.PasswordParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}

// Password is the password NewEnv's users have.
const Password = "correct horse battery staple"

// NewEnv builds an engine on a fresh store from open. mod may adjust the
// config before New.
func NewEnv(t testing.TB, open Open, mod func(*latchkey.Config)) *Env {
	t.Helper()
	st := open(t)
	spy := NewSpy(st)
	clock := NewClock()
	key := make([]byte, latchkey.MasterKeySize)
	rand.Read(key)
	cfg := latchkey.Config{MasterKey: key, PasswordParams: CheapPasswords, Now: clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	e, err := latchkey.New(t.Context(), spy, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &Env{T: t, Ctx: t.Context(), Store: st, Spy: spy, Clock: clock, Engine: e, Config: cfg}
}

// User registers a user with Password.
func (env *Env) User(email string) *latchkey.User {
	env.T.Helper()
	u, err := env.Engine.Register(env.Ctx, latchkey.NewUser{Email: email, Password: Password})
	if err != nil {
		env.T.Fatalf("Register(%s): %v", email, err)
	}
	return u
}

// Login signs u in.
func (env *Env) Login(u *latchkey.User, mode latchkey.Mode, d latchkey.Device) *latchkey.Grant {
	env.T.Helper()
	g, err := env.Engine.Login(env.Ctx, u.Email, Password, mode, d)
	if err != nil {
		env.T.Fatalf("Login: %v", err)
	}
	return g
}

// Refresh refreshes in cookie mode and fails the test on error.
func (env *Env) Refresh(tok latchkey.Token, d latchkey.Device) *latchkey.Grant {
	env.T.Helper()
	g, err := env.Engine.Refresh(env.Ctx, string(tok), latchkey.ModeCookie, d)
	if err != nil {
		env.T.Fatalf("Refresh: %v", err)
	}
	return g
}

// Session reads a session straight from the backend.
func (env *Env) Session(id uuid.UUID) *latchkey.Session {
	env.T.Helper()
	s, err := env.Store.SessionByID(env.Ctx, id)
	if err != nil {
		env.T.Fatalf("SessionByID: %v", err)
	}
	return s
}

// Events lists the events of kind for a session.
func (env *Env) Events(sid uuid.UUID, kind latchkey.EventKind) []*latchkey.Event {
	env.T.Helper()
	ev, err := env.Store.ListEvents(env.Ctx, latchkey.EventFilter{SessionID: sid, Kind: kind, Limit: 10000})
	if err != nil {
		env.T.Fatalf("ListEvents: %v", err)
	}
	return ev
}

// Browser and Phone are two clients; Browser is the one that signs in.
var (
	Browser = latchkey.Device{ID: "device-1", Name: "laptop", UserAgent: "Mozilla/5.0 test", IP: "192.0.2.1"}
	Phone   = latchkey.Device{ID: "device-2", Name: "phone", UserAgent: "LatchkeyApp/1.0", IP: "192.0.2.2"}
)

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// Run runs the engine suite against stores from open.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Open)
	}{
		{"ConcurrentRefreshConverges", testConcurrentRefresh},
		{"GraceRetryReturnsSameToken", testGraceRetry},
		{"GraceFromOtherClientIsReuse", testGraceOtherClient},
		{"ReuseAfterGraceRevokesSession", testReuseAfterGrace},
		{"OlderThanPreviousGenerationIsReuse", testGenerationNMinus2},
		{"GraceDisabled", testGraceDisabled},
		{"FutureRotationIsOutsideGrace", testFutureRotation},
		{"ForgedTokensMakeNoStorageCall", testForgedTokens},
		{"UnverifiableTokenChangesNothing", testUnverifiable},
		{"LostRotationRecoveredByNextHash", testLostRotation},
		{"ModeEnforced", testModeEnforced},
		{"IdleExpiry", testIdleExpiry},
		{"AbsoluteExpiry", testAbsoluteExpiry},
		{"DerivationCap", testDerivationCap},
		{"InactiveUser", testInactiveUser},
		{"Logout", testLogout},
		{"LogoutAll", testLogoutAll},
		{"SessionsAndRevokeSession", testSessions},
		{"ChangePassword", testChangePassword},
		{"SetRole", testSetRole},
		{"Authenticate", testAuthenticate},
		{"Login", testLogin},
		{"Register", testRegister},
		{"RehashOnLogin", testRehash},
		{"RevocationFeed", testRevocationFeed},
		{"SignInRacingLogoutAll", testSignInRace},
		{"PasswordChangesRacing", testPasswordChangeRace},
		{"DeleteUser", testDeleteUser},
		{"Cleanup", testCleanup},
		{"KeysSurviveRestart", testKeysSurviveRestart},
		{"RotateSigningKey", testRotateSigningKey},
		{"RevokeSigningKey", testRevokeSigningKey},
		{"RotationKeys", testRotationKeys},
		{"TagKeys", testTagKeys},
		{"AllKeysOfAPurposeRevoked", testAllKeysRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// testConcurrentRefresh is DESIGN.md's convergence rule: N callers present one
// token at once, the session advances exactly one generation and all of them
// get the same new token. The gate holds every rotation until all 64 have
// arrived, so they really overlap even on two cores.
func testConcurrentRefresh(t *testing.T, open Open) {
	// A clock that moves on every reading, as a real one does: the winner's
	// rotation time is later than some losers' first reading.
	tick := &tickingClock{now: NewClock().Now()}
	env := NewEnv(t, open, func(c *latchkey.Config) { c.Now = tick.Now })
	RefreshAtOnce(t, env, Instance{Engine: env.Engine, Spy: env.Spy})
}

// Instance is one engine and the spied store it talks to, as one server
// instance behind a load balancer.
type Instance struct {
	Engine *latchkey.Engine
	Spy    *Spy
}

// RefreshAtOnce signs a user in on env and has 64 callers, spread over the
// instances, refresh that sign-in's token at once. A gate in each spy holds
// every rotation until all 64 have reached it, so that they overlap even on
// two cores. The session must advance exactly one generation, with 63 grace
// answers, and every caller must get the same new token, which is then the
// live one.
func RefreshAtOnce(t *testing.T, env *Env, instances ...Instance) {
	t.Helper()
	const n = 64
	g := env.Login(env.User("tabs@example.com"), latchkey.ModeCookie, Browser)

	var arrived sync.WaitGroup
	arrived.Add(n)
	var mu sync.Mutex
	gated := 0
	gate := func() {
		mu.Lock()
		gated++
		first := gated <= n
		mu.Unlock()
		if first {
			arrived.Done()
			arrived.Wait()
		}
	}
	for _, in := range instances {
		in.Spy.BeforeRotate(gate)
	}
	tokens := make([]latchkey.Token, n)
	errs := make([]error, n)
	var done sync.WaitGroup
	for i := range n {
		done.Add(1)
		e := instances[i%len(instances)].Engine
		go func() {
			defer done.Done()
			r, err := e.Refresh(env.Ctx, string(g.RefreshToken), latchkey.ModeCookie, Browser)
			errs[i] = err
			if err == nil {
				tokens[i] = r.RefreshToken
			}
		}()
	}
	done.Wait()
	for _, in := range instances {
		in.Spy.BeforeRotate(nil)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if tokens[i] != tokens[0] {
			t.Fatalf("caller %d got a different token than caller 0", i)
		}
	}
	if tokens[0] == g.RefreshToken {
		t.Fatal("the session did not rotate")
	}
	if got := env.Session(g.SessionID).Generation; got != 1 {
		t.Fatalf("generation = %d, want 1", got)
	}
	if got := len(env.Events(g.SessionID, latchkey.EventGraceAnswer)); got != n-1 {
		t.Fatalf("grace answers = %d, want %d", got, n-1)
	}
	// The converged token is the live one.
	next := env.Refresh(tokens[0], Browser)
	if got := env.Session(g.SessionID).Generation; got != 2 || next.RefreshToken == tokens[0] {
		t.Fatalf("after refreshing the converged token: generation %d", got)
	}
}

func testGraceRetry(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	g := env.Login(env.User("retry@example.com"), latchkey.ModeCookie, Browser)
	first := env.Refresh(g.RefreshToken, Browser)
	env.Clock.Advance(9 * time.Second)
	again := env.Refresh(g.RefreshToken, Browser) // the response to the first was lost
	if again.RefreshToken != first.RefreshToken {
		t.Fatal("a retry inside the grace window got a different token")
	}
	if again.AccessToken == "" || again.UserID != g.UserID {
		t.Fatal("the grace answer lacks an access token for the user")
	}
	if got := env.Session(g.SessionID).Generation; got != 1 {
		t.Fatalf("generation = %d, want 1 (a grace answer must not rotate)", got)
	}
	if got := len(env.Events(g.SessionID, latchkey.EventGraceAnswer)); got != 1 {
		t.Fatalf("grace_answer events = %d, want 1", got)
	}
	// The answered token still works and rotates normally.
	env.Refresh(again.RefreshToken, Browser)
}

func testGraceOtherClient(t *testing.T, open Open) {
	for _, other := range []latchkey.Device{
		{ID: Browser.ID, UserAgent: "curl/8.0"},        // other user agent
		{ID: "device-x", UserAgent: Browser.UserAgent}, // other device id
	} {
		env := NewEnv(t, open, nil)
		g := env.Login(env.User("other@example.com"), latchkey.ModeCookie, Browser)
		newest := env.Refresh(g.RefreshToken, Browser)
		_, err := env.Engine.Refresh(env.Ctx, string(g.RefreshToken), latchkey.ModeCookie, other)
		wantErr(t, "old token from another client inside the window", err, latchkey.ErrTokenReused)
		_, err = env.Engine.Refresh(env.Ctx, string(newest.RefreshToken), latchkey.ModeCookie, Browser)
		wantErr(t, "newest token after reuse", err, latchkey.ErrRevokedToken)
	}
}

func testReuseAfterGrace(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	g := env.Login(env.User("thief@example.com"), latchkey.ModeCookie, Browser)
	newest := env.Refresh(g.RefreshToken, Browser)
	env.Clock.Advance(10 * time.Second) // the window is [0, 10s)
	_, err := env.Engine.Refresh(env.Ctx, string(g.RefreshToken), latchkey.ModeCookie, Browser)
	wantErr(t, "old token after the grace window", err, latchkey.ErrTokenReused)
	s := env.Session(g.SessionID)
	if !s.Revoked() || s.RevokeReason != latchkey.RevokeReuseDetected {
		t.Fatalf("session revoked=%v reason=%q, want reuse_detected", s.Revoked(), s.RevokeReason)
	}
	ev := env.Events(g.SessionID, latchkey.EventReuseDetected)
	if len(ev) != 1 || ev[0].Detail == "" || ev[0].UserID != g.UserID {
		t.Fatalf("reuse events = %+v, want one naming its cause and user", ev)
	}
	_, err = env.Engine.Refresh(env.Ctx, string(newest.RefreshToken), latchkey.ModeCookie, Browser)
	wantErr(t, "newest token after reuse", err, latchkey.ErrRevokedToken)
	_, err = env.Engine.Authenticate(env.Ctx, string(newest.AccessToken))
	wantErr(t, "access token of the ended session", err, latchkey.ErrRevokedToken)
}

func testGenerationNMinus2(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	g := env.Login(env.User("old@example.com"), latchkey.ModeCookie, Browser)
	g1 := env.Refresh(g.RefreshToken, Browser)
	env.Refresh(g1.RefreshToken, Browser)
	_, err := env.Engine.Refresh(env.Ctx, string(g.RefreshToken), latchkey.ModeCookie, Browser)
	wantErr(t, "generation n-2 inside the window", err, latchkey.ErrTokenReused)
	if !env.Session(g.SessionID).Revoked() {
		t.Fatal("session not revoked")
	}
}

func testGraceDisabled(t *testing.T, open Open) {
	env := NewEnv(t, open, func(c *latchkey.Config) { c.Grace = latchkey.GraceDisabled })
	g := env.Login(env.User("strict@example.com"), latchkey.ModeCookie, Browser)
	env.Refresh(g.RefreshToken, Browser)
	_, err := env.Engine.Refresh(env.Ctx, string(g.RefreshToken), latchkey.ModeCookie, Browser)
	wantErr(t, "immediate retry with grace disabled", err, latchkey.ErrTokenReused)
}

func testFutureRotation(t *testing.T, open Open) {
	// Instance A rotates with a clock ahead of instance B's; B must not treat
	// the negative age as inside the window.
	a := NewEnv(t, open, nil)
	g := a.Login(a.User("skew@example.com"), latchkey.ModeCookie, Browser)
	a.Clock.Advance(5 * time.Second)
	a.Refresh(g.RefreshToken, Browser)
	a.Clock.Advance(-5 * time.Second)
	_, err := a.Engine.Refresh(a.Ctx, string(g.RefreshToken), latchkey.ModeCookie, Browser)
	wantErr(t, "retry before the recorded rotation time", err, latchkey.ErrTokenReused)
}

// forgeries returns tokens that must fail the tag check.
func forgeries(t *testing.T, real, older latchkey.Token, sid uuid.UUID) map[string]string {
	t.Helper()
	raw := string(real)
	body := raw[len("lkr_"):]
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = 'a'
	}
	// The same bytes with another secret: a real session id and generation,
	// a made-up secret, and the old tag.
	withSecret := func(tok latchkey.Token) string {
		b := []byte(string(tok))
		// characters 4+34 .. 4+76 carry the secret (bytes 25..57).
		for i := 4 + 34; i < 4+76; i++ {
			b[i] = 'Q'
		}
		return string(b)
	}
	return map[string]string{
		"bad tag":                       flip(raw, len(raw)-2),
		"real session, made-up secret":  withSecret(real),
		"old generation, wrong secret":  withSecret(older),
		"flipped session id":            flip(raw, 6),
		"truncated":                     raw[:len(raw)-1],
		"truncated by a byte":           raw[:len(raw)-2],
		"padded":                        raw + "==",
		"extra character":               raw + "A",
		"non-canonical base64":          nonCanonical(raw),
		"standard base64 alphabet":      "lkr_" + swapAlphabet(body),
		"wrong prefix":                  "lkx_" + body,
		"no prefix":                     body,
		"wrong version":                 "lkr_" + flip(body, 0),
		"empty":                         "",
		"1 MB":                          string(big),
		"session id only":               "lkr_" + sid.String(),
		"access token as refresh token": "eyJhbGciOiJFZERTQSJ9.e30.c2ln",
	}
}

// nonCanonical changes the unused low bits of the last base64 character, which
// a lenient decoder maps to the same bytes.
func nonCanonical(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := s[len(s)-1]
	for i := 0; i < len(alphabet); i++ {
		if alphabet[i] == last {
			// 73 bytes leave 4 unused bits in the last character; setting the
			// lowest one keeps the decoded bytes but breaks canonical form.
			return s[:len(s)-1] + string(alphabet[i|1])
		}
	}
	return s
}

func swapAlphabet(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch c {
		case '-':
			b[i] = '+'
		case '_':
			b[i] = '/'
		}
	}
	return string(b)
}

func testForgedTokens(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	g := env.Login(env.User("forge@example.com"), latchkey.ModeCookie, Browser)
	g1 := env.Refresh(g.RefreshToken, Browser)
	env.Clock.Advance(time.Minute)
	before := *env.Session(g.SessionID)
	calls := env.Spy.Calls()
	for name, tok := range forgeries(t, g1.RefreshToken, g.RefreshToken, g.SessionID) {
		if tok == string(g1.RefreshToken) || tok == string(g.RefreshToken) {
			t.Fatalf("%s: forgery equals a real token", name)
		}
		_, err := env.Engine.Refresh(env.Ctx, tok, latchkey.ModeCookie, Browser)
		wantErr(t, name+" (refresh)", err, latchkey.ErrInvalidToken)
		err = env.Engine.Logout(env.Ctx, tok, Browser)
		wantErr(t, name+" (logout)", err, latchkey.ErrInvalidToken)
		if got := env.Spy.Calls(); got != calls {
			t.Fatalf("%s: %d storage calls, want 0", name, got-calls)
		}
	}
	after := env.Session(g.SessionID)
	if after.Generation != before.Generation || after.Revoked() || !after.LastUsedAt.Equal(before.LastUsedAt) {
		t.Fatal("forged tokens changed the session")
	}
	// The real token still works: nothing was revoked.
	env.Refresh(g1.RefreshToken, Browser)
}

// testUnverifiable covers a token with a valid tag whose session no longer
// exists (deleted by cleanup), and logout-all of an unknown user.
func testUnverifiable(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	g := env.Login(env.User("ghost@example.com"), latchkey.ModeCookie, Browser)
	_, err := env.Engine.LogoutAll(env.Ctx, uuid.New(), Browser)
	wantErr(t, "logout-all of an unknown user", err, latchkey.ErrNotFound)
	env.Clock.Advance(31 * 24 * time.Hour)
	if _, err := env.Engine.Cleanup(env.Ctx, nil); err != nil {
		t.Fatal(err)
	}
	_, err = env.Engine.Refresh(env.Ctx, string(g.RefreshToken), latchkey.ModeCookie, Browser)
	wantErr(t, "token of a deleted session", err, latchkey.ErrInvalidToken)
	err = env.Engine.Logout(env.Ctx, string(g.RefreshToken), Browser)
	wantErr(t, "logout with a token of a deleted session", err, latchkey.ErrInvalidToken)
}

func testLostRotation(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	g := env.Login(env.User("power@example.com"), latchkey.ModeCookie, Browser)
	g1 := env.Refresh(g.RefreshToken, Browser)
	before := env.Session(g.SessionID)
	env.Spy.LoseRotations(true)
	g2 := env.Refresh(g1.RefreshToken, Browser) // answered, then rolled back
	env.Spy.LoseRotations(false)
	if got := env.Session(g.SessionID); got.Generation != before.Generation {
		t.Fatalf("generation after the lost commit = %d, want %d", got.Generation, before.Generation)
	}
	env.Clock.Advance(time.Hour)
	g3 := env.Refresh(g2.RefreshToken, Browser) // the client only has g2
	s := env.Session(g.SessionID)
	if s.Generation != 3 || s.Revoked() {
		t.Fatalf("after recovery: generation %d revoked %v, want 3 and live", s.Generation, s.Revoked())
	}
	if len(env.Events(g.SessionID, latchkey.EventLostRotation)) != 1 {
		t.Fatal("no lost_rotation_recovered event")
	}
	env.Refresh(g3.RefreshToken, Browser)
	// The lost generation's predecessor is now well behind: reuse.
	_, err := env.Engine.Refresh(env.Ctx, string(g1.RefreshToken), latchkey.ModeCookie, Browser)
	wantErr(t, "token from before the lost rotation", err, latchkey.ErrTokenReused)
}

func testModeEnforced(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	u := env.User("modes@example.com")
	cookie := env.Login(u, latchkey.ModeCookie, Browser)
	mobile := env.Login(u, latchkey.ModeMobile, Phone)
	_, err := env.Engine.Refresh(env.Ctx, string(cookie.RefreshToken), latchkey.ModeMobile, Browser)
	wantErr(t, "cookie token on a mobile endpoint", err, latchkey.ErrInvalidToken)
	_, err = env.Engine.Refresh(env.Ctx, string(mobile.RefreshToken), latchkey.ModeCookie, Phone)
	wantErr(t, "mobile token on a cookie endpoint", err, latchkey.ErrInvalidToken)
	for _, id := range []uuid.UUID{cookie.SessionID, mobile.SessionID} {
		if s := env.Session(id); s.Generation != 0 || s.Revoked() {
			t.Fatal("a wrong-mode refresh changed the session")
		}
	}
	if _, err := env.Engine.Refresh(env.Ctx, string(mobile.RefreshToken), latchkey.ModeMobile, Phone); err != nil {
		t.Fatalf("mobile token in mobile mode: %v", err)
	}
	if s := env.Session(mobile.SessionID); s.Mode != latchkey.ModeMobile {
		t.Fatalf("mode = %q", s.Mode)
	}
}

func testIdleExpiry(t *testing.T, open Open) {
	env := NewEnv(t, open, func(c *latchkey.Config) { c.RefreshIdleTTL = time.Hour; c.SessionMaxAge = 10 * time.Hour })
	g := env.Login(env.User("idle@example.com"), latchkey.ModeCookie, Browser)
	if want := env.Clock.Now().Add(time.Hour).Truncate(time.Microsecond); !g.RefreshExpiresAt.Equal(want) {
		t.Fatalf("refresh expiry %v, want %v", g.RefreshExpiresAt, want)
	}
	env.Clock.Advance(59 * time.Minute)
	g1 := env.Refresh(g.RefreshToken, Browser) // renews the idle deadline
	env.Clock.Advance(59 * time.Minute)
	g2 := env.Refresh(g1.RefreshToken, Browser)
	env.Clock.Advance(time.Hour) // exactly at the deadline: expired
	_, err := env.Engine.Refresh(env.Ctx, string(g2.RefreshToken), latchkey.ModeCookie, Browser)
	wantErr(t, "idle token", err, latchkey.ErrExpiredToken)
	if s := env.Session(g.SessionID); s.Revoked() || s.Generation != 2 {
		t.Fatal("an expired refresh changed the session")
	}
}

func testAbsoluteExpiry(t *testing.T, open Open) {
	env := NewEnv(t, open, func(c *latchkey.Config) { c.RefreshIdleTTL = time.Hour; c.SessionMaxAge = 150 * time.Minute })
	g := env.Login(env.User("abs@example.com"), latchkey.ModeCookie, Browser)
	tok := g.RefreshToken
	start := env.Clock.Now()
	for range 2 {
		env.Clock.Advance(50 * time.Minute)
		tok = env.Refresh(tok, Browser).RefreshToken
	}
	// At 100 min the idle deadline would be 160 min; it is clamped to 150.
	s := env.Session(g.SessionID)
	if want := start.Add(150 * time.Minute).Truncate(time.Microsecond); !s.IdleDeadline.Equal(want) {
		t.Fatalf("idle deadline %v, want clamped to %v", s.IdleDeadline, want)
	}
	// An access token never outlives its session: issued 10 minutes before
	// the absolute deadline, it expires with it, not 15 minutes later.
	env.Clock.Advance(40 * time.Minute)
	last := env.Refresh(tok, Browser)
	if want := start.Add(150 * time.Minute).Truncate(time.Microsecond); !last.AccessExpiresAt.Equal(want) {
		t.Fatalf("access token expires %v, want the session's end %v", last.AccessExpiresAt, want)
	}
	env.Clock.Advance(10 * time.Minute)
	_, err := env.Engine.Refresh(env.Ctx, string(last.RefreshToken), latchkey.ModeCookie, Browser)
	wantErr(t, "past the absolute deadline", err, latchkey.ErrExpiredToken)
}

func testDerivationCap(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	g := env.Login(env.User("cap@example.com"), latchkey.ModeCookie, Browser)
	tokens := []latchkey.Token{g.RefreshToken}
	for range 1025 {
		tokens = append(tokens, env.Refresh(tokens[len(tokens)-1], Browser).RefreshToken)
	}
	env.Clock.Advance(time.Minute)
	// 1,025 generations behind: refused without derivation, nothing revoked.
	_, err := env.Engine.Refresh(env.Ctx, string(tokens[0]), latchkey.ModeCookie, Browser)
	wantErr(t, "1025 generations behind", err, latchkey.ErrInvalidToken)
	if env.Session(g.SessionID).Revoked() {
		t.Fatal("a stale token revoked the session")
	}
	if len(env.Events(g.SessionID, latchkey.EventStaleToken)) != 1 {
		t.Fatal("no stale_token event")
	}
	// 1,024 behind is still derived and recognised as reuse.
	_, err = env.Engine.Refresh(env.Ctx, string(tokens[1]), latchkey.ModeCookie, Browser)
	wantErr(t, "1024 generations behind", err, latchkey.ErrTokenReused)
}

func testInactiveUser(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	u := env.User("gone@example.com")
	g := env.Login(u, latchkey.ModeCookie, Browser)
	if _, err := env.Store.UpdateUser(env.Ctx, u.ID, latchkey.UserPatch{IsActive: new(false)}, env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	_, err := env.Engine.Refresh(env.Ctx, string(g.RefreshToken), latchkey.ModeCookie, Browser)
	wantErr(t, "refresh of an inactive user", err, latchkey.ErrInactiveUser)
	// Through the engine, deactivation also ends the sessions.
	g2 := env.Login(env.User("gone2@example.com"), latchkey.ModeCookie, Browser)
	if _, err := env.Engine.SetActive(env.Ctx, g2.UserID, false); err != nil {
		t.Fatal(err)
	}
	if s := env.Session(g2.SessionID); s.RevokeReason != latchkey.RevokeUserDeactivated {
		t.Fatalf("revoke reason %q", s.RevokeReason)
	}
	_, err = env.Engine.Authenticate(env.Ctx, string(g2.AccessToken))
	wantErr(t, "access token of a deactivated user", err, latchkey.ErrInactiveUser)
	_, err = env.Engine.Login(env.Ctx, "gone2@example.com", Password, latchkey.ModeCookie, Browser)
	wantErr(t, "login of a deactivated user", err, latchkey.ErrInvalidCredentials)
}

func testLogout(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	u := env.User("bye@example.com")
	g := env.Login(u, latchkey.ModeCookie, Browser)
	keep := env.Login(u, latchkey.ModeCookie, Phone)
	g1 := env.Refresh(g.RefreshToken, Browser)
	if err := env.Engine.Logout(env.Ctx, string(g1.RefreshToken), Browser); err != nil {
		t.Fatal(err)
	}
	s := env.Session(g.SessionID)
	if s.RevokeReason != latchkey.RevokeLogout {
		t.Fatalf("reason %q, want logout", s.RevokeReason)
	}
	_, err := env.Engine.Refresh(env.Ctx, string(g1.RefreshToken), latchkey.ModeCookie, Browser)
	wantErr(t, "refresh after logout", err, latchkey.ErrRevokedToken)
	if err := env.Engine.Logout(env.Ctx, string(g1.RefreshToken), Browser); err != nil {
		t.Fatalf("second logout: %v", err)
	}
	if env.Session(keep.SessionID).Revoked() {
		t.Fatal("logout ended another session")
	}
}

func testLogoutAll(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	u := env.User("all@example.com")
	other := env.Login(env.User("bystander@example.com"), latchkey.ModeCookie, Browser)
	var gs []*latchkey.Grant
	for range 3 {
		gs = append(gs, env.Login(u, latchkey.ModeCookie, Browser))
	}
	n, err := env.Engine.LogoutAll(env.Ctx, u.ID, Browser)
	if err != nil || n != 3 {
		t.Fatalf("LogoutAll = %d, %v; want 3", n, err)
	}
	for _, g := range gs {
		_, err := env.Engine.Authenticate(env.Ctx, string(g.AccessToken))
		wantErr(t, "access token after logout-all", err, latchkey.ErrRevokedToken)
		_, err = env.Engine.Refresh(env.Ctx, string(g.RefreshToken), latchkey.ModeCookie, Browser)
		wantErr(t, "refresh after logout-all", err, latchkey.ErrRevokedToken)
	}
	if _, err := env.Engine.Authenticate(env.Ctx, string(other.AccessToken)); err != nil {
		t.Fatalf("another user's session: %v", err)
	}
	if n, _ := env.Engine.LogoutAll(env.Ctx, u.ID, Browser); n != 0 {
		t.Fatalf("second LogoutAll = %d, want 0", n)
	}
}

func testSessions(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	u := env.User("devices@example.com")
	a := env.Login(u, latchkey.ModeCookie, Browser)
	env.Clock.Advance(time.Second)
	b := env.Login(u, latchkey.ModeMobile, Phone)
	stranger := env.Login(env.User("stranger@example.com"), latchkey.ModeCookie, Browser)
	ss, err := env.Engine.Sessions(env.Ctx, u.ID)
	if err != nil || len(ss) != 2 || ss[0].ID != b.SessionID || ss[1].ID != a.SessionID {
		t.Fatalf("Sessions = %v, %v; want [phone, browser]", ss, err)
	}
	if ss[0].DeviceName != "phone" || ss[0].UserAgent != Phone.UserAgent || ss[0].IPAddress != Phone.IP {
		t.Fatalf("device fields not kept: %+v", ss[0])
	}
	err = env.Engine.RevokeSession(env.Ctx, u.ID, stranger.SessionID, Browser)
	wantErr(t, "ending another user's session", err, latchkey.ErrNotFound)
	if err := env.Engine.RevokeSession(env.Ctx, u.ID, b.SessionID, Browser); err != nil {
		t.Fatal(err)
	}
	err = env.Engine.RevokeSession(env.Ctx, u.ID, b.SessionID, Browser)
	wantErr(t, "ending an ended session", err, latchkey.ErrNotFound)
	c := env.Login(u, latchkey.ModeCookie, Browser)
	n, err := env.Engine.RevokeOtherSessions(env.Ctx, u.ID, c.SessionID, Browser)
	if err != nil || n != 1 {
		t.Fatalf("RevokeOtherSessions = %d, %v; want 1", n, err)
	}
	ss, _ = env.Engine.Sessions(env.Ctx, u.ID)
	if len(ss) != 1 || ss[0].ID != c.SessionID {
		t.Fatalf("after ending the others: %v", ss)
	}
}

func testChangePassword(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	u := env.User("pw@example.com")
	mine := env.Login(u, latchkey.ModeCookie, Browser)
	other := env.Login(u, latchkey.ModeMobile, Phone)
	const next = "a much better passphrase 42"
	err := env.Engine.ChangePassword(env.Ctx, u.ID, mine.SessionID, "wrong password!", next, Browser)
	wantErr(t, "wrong current password", err, latchkey.ErrInvalidCredentials)
	err = env.Engine.ChangePassword(env.Ctx, u.ID, mine.SessionID, Password, "password", Browser)
	var ve *latchkey.ValidationError
	if !errors.As(err, &ve) || ve.Field != "password" {
		t.Fatalf("weak new password: got %v, want a validation error on password", err)
	}
	if err := env.Engine.ChangePassword(env.Ctx, u.ID, mine.SessionID, Password, next, Browser); err != nil {
		t.Fatal(err)
	}
	if s := env.Session(other.SessionID); s.RevokeReason != latchkey.RevokePasswordChanged {
		t.Fatalf("other session reason %q", s.RevokeReason)
	}
	if env.Session(mine.SessionID).Revoked() {
		t.Fatal("the caller's own session was ended")
	}
	_, err = env.Engine.Login(env.Ctx, u.Email, Password, latchkey.ModeCookie, Browser)
	wantErr(t, "login with the old password", err, latchkey.ErrInvalidCredentials)
	if _, err := env.Engine.Login(env.Ctx, u.Email, next, latchkey.ModeCookie, Browser); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	// The caller keeps its session: a refresh issues an access token of the
	// new token version.
	r := env.Refresh(mine.RefreshToken, Browser)
	if _, err := env.Engine.Authenticate(env.Ctx, string(r.AccessToken)); err != nil {
		t.Fatalf("fresh access token after the change: %v", err)
	}
}

func testSetRole(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	u := env.User("boss@example.com")
	if _, err := env.Engine.SetRole(env.Ctx, u.ID, latchkey.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	g := env.Login(u, latchkey.ModeCookie, Browser)
	p, err := env.Engine.Authenticate(env.Ctx, string(g.AccessToken))
	if err != nil || p.User.Role != latchkey.RoleAdmin || p.Claims.Role != latchkey.RoleAdmin {
		t.Fatalf("admin: %v %v", p, err)
	}
	if _, err := env.Engine.SetRole(env.Ctx, u.ID, latchkey.RoleUser); err != nil {
		t.Fatal(err)
	}
	_, err = env.Engine.Authenticate(env.Ctx, string(g.AccessToken))
	wantErr(t, "admin token after demotion", err, latchkey.ErrRevokedToken)
	r := env.Refresh(g.RefreshToken, Browser)
	if r.Role != latchkey.RoleUser {
		t.Fatalf("role after refresh = %q, want user", r.Role)
	}
	_, err = env.Engine.SetRole(env.Ctx, u.ID, "root")
	var ve *latchkey.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("unknown role: %v", err)
	}
	_, err = env.Engine.SetRole(env.Ctx, uuid.New(), latchkey.RoleAdmin)
	wantErr(t, "unknown user", err, latchkey.ErrNotFound)
}

func testAuthenticate(t *testing.T, open Open) {
	env := NewEnv(t, open, func(c *latchkey.Config) { c.AccessTTL = time.Minute; c.Leeway = time.Second })
	g := env.Login(env.User("auth@example.com"), latchkey.ModeCookie, Browser)
	calls := env.Spy.Calls()
	c, err := env.Engine.VerifyAccessToken(string(g.AccessToken))
	if err != nil || c.UserID != g.UserID || c.SessionID != g.SessionID || c.Role != latchkey.RoleUser {
		t.Fatalf("VerifyAccessToken = %+v, %v", c, err)
	}
	if env.Spy.Calls() != calls {
		t.Fatal("VerifyAccessToken touched the store")
	}
	p, err := env.Engine.Authenticate(env.Ctx, string(g.AccessToken))
	if err != nil || p.User.ID != g.UserID {
		t.Fatalf("Authenticate: %v", err)
	}
	if got := env.Spy.Calls() - calls; got != 1 {
		t.Fatalf("Authenticate made %d store calls, want 1", got)
	}
	env.Clock.Advance(time.Minute)
	if _, err := env.Engine.VerifyAccessToken(string(g.AccessToken)); err != nil {
		t.Fatalf("inside the leeway: %v", err)
	}
	env.Clock.Advance(time.Second)
	_, err = env.Engine.VerifyAccessToken(string(g.AccessToken))
	wantErr(t, "expired access token", err, latchkey.ErrExpiredToken)
	_, err = env.Engine.Authenticate(env.Ctx, string(g.RefreshToken))
	wantErr(t, "refresh token as access token", err, latchkey.ErrInvalidToken)
	// A token from an engine with other keys does not verify.
	other := NewEnv(t, open, nil)
	og := other.Login(other.User("auth@example.com"), latchkey.ModeCookie, Browser)
	_, err = env.Engine.VerifyAccessToken(string(og.AccessToken))
	wantErr(t, "foreign access token", err, latchkey.ErrInvalidToken)
}

func testLogin(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	u := env.User("Login@Example.com")
	if u.Email != "login@example.com" {
		t.Fatalf("email stored as %q, want lower case", u.Email)
	}
	if _, err := env.Engine.Login(env.Ctx, "LOGIN@example.com", Password, latchkey.ModeCookie, Browser); err != nil {
		t.Fatalf("case-insensitive email: %v", err)
	}
	for name, c := range map[string][2]string{
		"wrong password": {"login@example.com", "not the password"},
		"unknown email":  {"nobody@example.com", Password},
		"malformed":      {"not an email", Password},
		"empty password": {"login@example.com", ""},
	} {
		_, err := env.Engine.Login(env.Ctx, c[0], c[1], latchkey.ModeCookie, Browser)
		wantErr(t, name, err, latchkey.ErrInvalidCredentials)
	}
	_, err := env.Engine.Login(env.Ctx, u.Email, Password, "desktop", Browser)
	var ve *latchkey.ValidationError
	if !errors.As(err, &ve) || ve.Field != "mode" {
		t.Fatalf("bad mode: %v", err)
	}
	failed, _ := env.Store.ListEvents(env.Ctx, latchkey.EventFilter{Kind: latchkey.EventSignInFailed})
	if len(failed) != 4 {
		t.Fatalf("sign_in_failed events = %d, want 4", len(failed))
	}
}

func testRegister(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	env.User("taken@example.com")
	_, err := env.Engine.Register(env.Ctx, latchkey.NewUser{Email: "TAKEN@example.com", Password: Password})
	wantErr(t, "duplicate email", err, latchkey.ErrEmailTaken)
	for name, c := range map[string]struct{ email, password, field string }{
		"bad email":      {"nope", Password, "email"},
		"short password": {"a@example.com", "Ab1!xyz", "password"},
		"long password":  {"a@example.com", string(make([]rune, 129)), "password"},
		"weak password":  {"a@example.com", "password1", "password"},
	} {
		_, err := env.Engine.Register(env.Ctx, latchkey.NewUser{Email: c.email, Password: c.password})
		var ve *latchkey.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Fatalf("%s: got %v, want a validation error on %s", name, err, c.field)
		}
	}
	_, err = env.Engine.Register(env.Ctx, latchkey.NewUser{Email: "b@example.com", Password: "password1"})
	wantErr(t, "weak password", err, latchkey.ErrWeakPassword)
	// 8 characters after NFKC: the ligature "ﬁ" counts as two.
	if _, err := env.Engine.Register(env.Ctx, latchkey.NewUser{Email: "nfkc@example.com", Password: "ﬁzzbuzqx"}); err != nil {
		t.Fatalf("NFKC length: %v", err)
	}
}

func testCleanup(t *testing.T, open Open) {
	env := NewEnv(t, open, func(c *latchkey.Config) {
		c.SessionMaxAge = time.Hour
		c.RefreshIdleTTL = time.Hour
		c.EventRetention = 2 * time.Hour
		c.CleanupBatch = 2
	})
	u := env.User("old@example.com")
	var old []*latchkey.Grant
	for range 5 {
		old = append(old, env.Login(u, latchkey.ModeCookie, Browser))
	}
	env.Clock.Advance(90 * time.Minute)
	fresh := env.Login(u, latchkey.ModeCookie, Browser)
	var batches int
	p, err := env.Engine.Cleanup(env.Ctx, func(latchkey.CleanupProgress) { batches++ })
	if err != nil || p.SessionsDeleted != 5 || p.EventsDeleted != 0 {
		t.Fatalf("Cleanup = %+v, %v; want 5 sessions", p, err)
	}
	if batches < 3 {
		t.Fatalf("progress called %d times, want one per batch of 2", batches)
	}
	if _, err := env.Store.SessionByID(env.Ctx, old[0].SessionID); !errors.Is(err, latchkey.ErrNotFound) {
		t.Fatalf("expired session kept: %v", err)
	}
	env.Refresh(fresh.RefreshToken, Browser)
	env.Clock.Advance(time.Hour)
	p, err = env.Engine.Cleanup(env.Ctx, nil)
	if err != nil || p.EventsDeleted < 6 {
		t.Fatalf("event cleanup = %+v, %v", p, err)
	}
}

// testKeysSurviveRestart opens a second engine on the same store with the
// same master key (tokens keep working) and with another (refused).
func testKeysSurviveRestart(t *testing.T, open Open) {
	st := open(t)
	key := make([]byte, latchkey.MasterKeySize)
	rand.Read(key)
	clock := NewClock()
	cfg := latchkey.Config{MasterKey: key, PasswordParams: CheapPasswords, Now: clock.Now}
	e1, err := latchkey.New(t.Context(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e1.Register(t.Context(), latchkey.NewUser{Email: "k@example.com", Password: Password}); err != nil {
		t.Fatal(err)
	}
	g, err := e1.Login(t.Context(), "k@example.com", Password, latchkey.ModeCookie, Browser)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := latchkey.New(t.Context(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e2.Refresh(t.Context(), string(g.RefreshToken), latchkey.ModeCookie, Browser); err != nil {
		t.Fatalf("refresh on a restarted engine: %v", err)
	}
	if _, err := e2.Authenticate(t.Context(), string(g.AccessToken)); err != nil {
		t.Fatalf("access token on a restarted engine: %v", err)
	}
	wrong := make([]byte, latchkey.MasterKeySize)
	_, err = latchkey.New(t.Context(), st, latchkey.Config{MasterKey: wrong})
	wantErr(t, "wrong master key", err, latchkey.ErrWrongMasterKey)
	_, err = latchkey.New(t.Context(), st, latchkey.Config{})
	var ve *latchkey.ValidationError
	if !errors.As(err, &ve) || ve.Field != "master_key" {
		t.Fatalf("missing master key: %v", err)
	}
}

// testRehash signs in through a second engine with stronger password
// parameters than the stored hash was made with: the hash is upgraded and
// still works.
func testRehash(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	u := env.User("upgrade@example.com")
	cfg := env.Config
	cfg.PasswordParams = latchkey.PasswordParams{MemoryKiB: 128, Iterations: 2, Parallelism: 1}
	up, err := latchkey.New(env.Ctx, env.Store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Login(env.Ctx, u.Email, Password, latchkey.ModeCookie, Browser); err != nil {
		t.Fatal(err)
	}
	after, err := env.Store.UserByID(env.Ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.PasswordHash == u.PasswordHash || !strings.Contains(after.PasswordHash, "$m=128,t=2,p=1$") {
		t.Fatalf("hash not upgraded: %q", after.PasswordHash)
	}
	if _, err := up.Login(env.Ctx, u.Email, Password, latchkey.ModeCookie, Browser); err != nil {
		t.Fatalf("login with the upgraded hash: %v", err)
	}
}

// testRevocationFeed serves a revocation only once it has settled, in order,
// and pages by cursor.
func testRevocationFeed(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	u := env.User("feed@example.com")
	a := env.Login(u, latchkey.ModeCookie, Browser)
	b := env.Login(u, latchkey.ModeCookie, Browser)
	if err := env.Engine.Logout(env.Ctx, string(a.RefreshToken), Browser); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(time.Second)
	if err := env.Engine.Logout(env.Ctx, string(b.RefreshToken), Browser); err != nil {
		t.Fatal(err)
	}
	got, err := env.Engine.Revocations(env.Ctx, latchkey.RevocationCursor{}, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("fresh revocations served: %d, %v; want none until they settle", len(got), err)
	}
	env.Clock.Advance(latchkey.RevocationFeedDelay - time.Second)
	got, _ = env.Engine.Revocations(env.Ctx, latchkey.RevocationCursor{}, 10)
	if len(got) != 1 || got[0].ID != a.SessionID {
		t.Fatalf("after the first settled: %d entries, want session a", len(got))
	}
	env.Clock.Advance(time.Second)
	next, _ := env.Engine.Revocations(env.Ctx, latchkey.RevocationCursor{At: got[0].RevokedAt, ID: got[0].ID}, 10)
	if len(next) != 1 || next[0].ID != b.SessionID {
		t.Fatalf("from the cursor: %d entries, want session b", len(next))
	}
}

// testSignInRace puts a logout-all (as a password change or deactivation
// would) between a sign-in's password check and its session insert: the
// sign-in must fail and leave no session behind.
func testSignInRace(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	u := env.User("race@example.com")
	env.Spy.BeforeCreateSession(func() {
		env.Spy.BeforeCreateSession(nil)
		if _, err := env.Engine.LogoutAll(env.Ctx, u.ID, Browser); err != nil {
			t.Errorf("LogoutAll: %v", err)
		}
	})
	_, err := env.Engine.Login(env.Ctx, u.Email, Password, latchkey.ModeCookie, Browser)
	wantErr(t, "sign-in overtaken by logout-all", err, latchkey.ErrInvalidCredentials)
	if ss, _ := env.Engine.Sessions(env.Ctx, u.ID); len(ss) != 0 {
		t.Fatalf("%d sessions survived logout-all", len(ss))
	}
	// The next sign-in, at the new version, works.
	env.Login(u, latchkey.ModeCookie, Browser)
}

// tickingClock advances by a microsecond on every reading.
type tickingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *tickingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Microsecond)
	return c.now
}

// testPasswordChangeRace puts another password change between a change's
// check of the current password and its write: the later one must fail, and
// the password set first stays.
func testPasswordChangeRace(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	u := env.User("twice@example.com")
	const owners, attackers = "the owner's new passphrase 1", "the attacker's new passphrase 2"
	env.Spy.BeforeInTx(func() {
		env.Spy.BeforeInTx(nil)
		if err := env.Engine.ChangePassword(env.Ctx, u.ID, uuid.Nil, Password, owners, Browser); err != nil {
			t.Errorf("the first change: %v", err)
		}
	})
	err := env.Engine.ChangePassword(env.Ctx, u.ID, uuid.Nil, Password, attackers, Phone)
	wantErr(t, "a change checked against a password that changed meanwhile", err, latchkey.ErrInvalidCredentials)
	if _, err := env.Engine.Login(env.Ctx, u.Email, owners, latchkey.ModeCookie, Browser); err != nil {
		t.Fatalf("the first change's password: %v", err)
	}
	_, err = env.Engine.Login(env.Ctx, u.Email, attackers, latchkey.ModeCookie, Browser)
	wantErr(t, "the losing change's password", err, latchkey.ErrInvalidCredentials)
}

// testDeleteUser: deleting a user ends its sessions at once and the
// revocation feed reports them once settled.
func testDeleteUser(t *testing.T, open Open) {
	env := NewEnv(t, open, nil)
	u := env.User("leaving@example.com")
	g := env.Login(u, latchkey.ModeCookie, Browser)
	if err := env.Engine.DeleteUser(env.Ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	_, err := env.Engine.Refresh(env.Ctx, string(g.RefreshToken), latchkey.ModeCookie, Browser)
	wantErr(t, "refresh of a deleted user's session", err, latchkey.ErrRevokedToken)
	_, err = env.Engine.Authenticate(env.Ctx, string(g.AccessToken))
	wantErr(t, "access token of a deleted user", err, latchkey.ErrInvalidToken)
	env.Clock.Advance(latchkey.RevocationFeedDelay)
	feed, err := env.Engine.Revocations(env.Ctx, latchkey.RevocationCursor{}, 10)
	if err != nil || len(feed) != 1 || feed[0].ID != g.SessionID {
		t.Fatalf("revocation feed = %d entries, %v; want the deleted user's session", len(feed), err)
	}
	err = env.Engine.DeleteUser(env.Ctx, u.ID)
	wantErr(t, "deleting twice", err, latchkey.ErrNotFound)
}
