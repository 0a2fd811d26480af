package latchkey_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/store/sqlite"
)

// TestModelRefreshRotation drives Engine.Refresh, Engine.Logout and
// Engine.Login on a real SQLite store with random sequences of clock steps,
// refreshes (with any token ever handed out, from the rotating device or
// another one), logouts and mangled tokens, and checks every answer, and the
// stored session after every step, against a small reference model of
// DESIGN.md, "Refresh tokens".

const (
	modelGrace    = 10 * time.Second
	modelIdleTTL  = time.Hour
	modelMaxAge   = 4 * time.Hour
	modelEmail    = "model@example.com"
	modelPassword = "correct horse battery staple"
	modelMaxLogin = 6 // sessions per run
)

// modelClock is the engine's clock, moved only by the test.
type modelClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *modelClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *modelClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// rotationModel is the reference: what DESIGN.md says one session is.
type rotationModel struct {
	gen       uint64 // current generation n
	rotatedAt time.Time
	rotUA     string // user agent and device id of the request that rotated last
	rotDevice string
	revoked   bool
	idle      time.Time // renewed to min(now+idle TTL, absolute) by each rotation
	absolute  time.Time // sign-in + max age
}

type refreshOutcome int

const (
	outcomeRotated refreshOutcome = iota // advanced to n+1, new token
	outcomeGrace                         // answered with the current token, nothing changes
	outcomeErr                           // failed with the error predicted
)

// predictRefresh returns what refreshing generation m at now from d must do.
func (s *rotationModel) predictRefresh(m uint64, now time.Time, d latchkey.Device) (refreshOutcome, error) {
	age := now.Sub(s.rotatedAt)
	switch {
	case s.revoked:
		return outcomeErr, latchkey.ErrRevokedToken
	case !now.Before(s.idle) || !now.Before(s.absolute):
		return outcomeErr, latchkey.ErrExpiredToken
	case m == s.gen:
		return outcomeRotated, nil
	case m+1 == s.gen && age >= 0 && age < modelGrace && d.UserAgent == s.rotUA && d.ID == s.rotDevice:
		return outcomeGrace, nil
	default: // m < n
		return outcomeErr, latchkey.ErrTokenReused
	}
}

func (s *rotationModel) live(now time.Time) bool {
	return !s.revoked && now.Before(s.idle) && now.Before(s.absolute)
}

// modelSession is one sign-in: its model and every refresh token the engine
// has handed out for it, tokens[g] being generation g's (a grace answer
// repeats tokens[n]).
type modelSession struct {
	rotationModel
	id     uuid.UUID
	tokens []string
}

var modelDevices = []latchkey.Device{
	{UserAgent: "ua-1", ID: "dev-1"},
	{UserAgent: "ua-1", ID: "dev-1", IP: "203.0.113.7", Name: "same device, other network"},
	{UserAgent: "ua-1", ID: "dev-2"},
	{UserAgent: "ua-2", ID: "dev-1"},
	{UserAgent: "ua-2", ID: "dev-2"},
}

func drawDevice(t *rapid.T) latchkey.Device {
	// The first device most of the time, so that grace answers happen.
	i := rapid.OneOf(rapid.Just(0), rapid.Just(0), rapid.IntRange(0, len(modelDevices)-1)).Draw(t, "device")
	return modelDevices[i]
}

// drawIndex draws an index below n, favouring the last one.
func drawIndex(t *rapid.T, n int, label string) int {
	return rapid.OneOf(rapid.Just(n-1), rapid.Just(n-1), rapid.Just(n-1), rapid.IntRange(0, n-1)).Draw(t, label)
}

// drawTokenIndex favours the current and the previous generation.
func drawTokenIndex(t *rapid.T, n int) int {
	i := rapid.OneOf(rapid.Just(n-1), rapid.Just(n-1), rapid.Just(n-1), rapid.Just(n-2), rapid.IntRange(0, n-1)).Draw(t, "token_index")
	return max(i, 0)
}

// drawStep draws a clock step; sinceRotation is how long ago the latest
// session last rotated, so that some steps land on the grace window's edge.
func drawStep(t *rapid.T, sinceRotation time.Duration) time.Duration {
	return rapid.OneOf(
		// To the grace window's edge after the last rotation, give or take 2 µs.
		rapid.Map(rapid.IntRange(-2, 2), func(us int) time.Duration {
			return modelGrace - sinceRotation + time.Duration(us)*time.Microsecond
		}),
		rapid.Map(rapid.IntRange(0, 20), func(s int) time.Duration { return time.Duration(s) * time.Second }),
		rapid.Map(rapid.IntRange(0, 20_000), func(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }),
		rapid.Map(rapid.IntRange(9_999_990, 10_000_010), func(us int) time.Duration { return time.Duration(us) * time.Microsecond }),
		rapid.Map(rapid.IntRange(1, 90), func(m int) time.Duration { return time.Duration(m) * time.Minute }),
		rapid.Map(rapid.IntRange(1, 5), func(h int) time.Duration { return time.Duration(h) * time.Hour }),
		// Rarely, the clock steps back: a rotation in the future is outside
		// the grace window.
		rapid.Map(rapid.IntRange(1, 3_000_000), func(us int) time.Duration { return -time.Duration(us) * time.Microsecond }),
	).Draw(t, "advance")
}

// mangle changes one character of a token's base64 body to another base64
// character, so that it still decodes (or fails strict decoding) but its tag
// no longer matches.
func mangle(t *rapid.T, tok string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := rapid.IntRange(len("lkr_"), len(tok)-1).Draw(t, "mangle_pos")
	c := rapid.SampledFrom([]byte(alphabet)).Filter(func(c byte) bool { return c != tok[i] }).Draw(t, "mangle_char")
	return tok[:i] + string([]byte{c}) + tok[i+1:]
}

// modelRun is one rapid iteration: an engine on a fresh SQLite file, its
// clock, and the model of every session opened so far.
type modelRun struct {
	t        *rapid.T
	ctx      context.Context
	st       *sqlite.Store
	eng      *latchkey.Engine
	clock    *modelClock
	start    time.Time
	step     int // the action being checked, for messages
	sessions []*modelSession
}

func (r *modelRun) now() time.Time { return r.clock.Now().UTC().Truncate(time.Microsecond) }

func (r *modelRun) assertNewToken(what, tok string) {
	for si, s := range r.sessions {
		for g, old := range s.tokens {
			if tok == old {
				r.t.Fatalf("step %d (%s): new token equals session %d's generation %d token", r.step, what, si, g)
			}
		}
	}
}

func (r *modelRun) login(d latchkey.Device) string {
	now := r.now()
	what := fmt.Sprintf("login %d from %s/%s at +%v", len(r.sessions), d.UserAgent, d.ID, now.Sub(r.start))
	g, err := r.eng.Login(r.ctx, modelEmail, modelPassword, latchkey.ModeCookie, d)
	if err != nil {
		r.t.Fatalf("step %d (%s): got error %v, want nil", r.step, what, err)
	}
	r.assertNewToken(what, string(g.RefreshToken))
	s := &modelSession{id: g.SessionID, tokens: []string{string(g.RefreshToken)},
		rotationModel: rotationModel{idle: now.Add(modelIdleTTL), absolute: now.Add(modelMaxAge)}}
	if s.idle.After(s.absolute) {
		s.idle = s.absolute
	}
	for si, o := range r.sessions {
		if o.id == s.id {
			r.t.Fatalf("step %d (%s): session id %v equals session %d's", r.step, what, s.id, si)
		}
	}
	if got, want := g.RefreshExpiresAt, s.idle; !got.Equal(want) {
		r.t.Fatalf("step %d (%s): RefreshExpiresAt = %v, want %v", r.step, what, got, want)
	}
	r.sessions = append(r.sessions, s)
	return what
}

// refresh presents session si's generation-i token from d and checks the
// answer against the model, which it then updates.
func (r *modelRun) refresh(si, i int, d latchkey.Device) string {
	s := r.sessions[si]
	now := r.now()
	what := fmt.Sprintf("refresh session %d gen %d (n=%d) from %s/%s at +%v, %v after the last rotation by %s/%s",
		si, i, s.gen, d.UserAgent, d.ID, now.Sub(r.start), now.Sub(s.rotatedAt), s.rotUA, s.rotDevice)
	outcome, wantErr := s.predictRefresh(uint64(i), now, d)
	g, err := r.eng.Refresh(r.ctx, s.tokens[i], latchkey.ModeCookie, d)
	switch outcome {
	case outcomeErr:
		if !errors.Is(err, wantErr) {
			r.t.Fatalf("step %d (%s): got %+v, %v; want error %v", r.step, what, g, err, wantErr)
		}
		if errors.Is(wantErr, latchkey.ErrTokenReused) {
			s.revoked = true
		}
		return what
	case outcomeRotated:
		if err != nil {
			r.t.Fatalf("step %d (%s): got error %v, want rotation to generation %d", r.step, what, err, s.gen+1)
		}
		tok := string(g.RefreshToken)
		r.assertNewToken(what, tok)
		s.gen++
		s.rotatedAt, s.rotUA, s.rotDevice = now, d.UserAgent, d.ID
		s.idle = now.Add(modelIdleTTL)
		if s.idle.After(s.absolute) {
			s.idle = s.absolute
		}
		s.tokens = append(s.tokens, tok)
	case outcomeGrace:
		if err != nil {
			r.t.Fatalf("step %d (%s): got error %v, want a grace answer with generation %d", r.step, what, err, s.gen)
		}
		if got, want := string(g.RefreshToken), s.tokens[s.gen]; got != want {
			r.t.Fatalf("step %d (%s): grace answer token = %q, want the current token %q", r.step, what, got, want)
		}
	}
	if got, want := g.RefreshExpiresAt, s.idle; !got.Equal(want) {
		r.t.Fatalf("step %d (%s): RefreshExpiresAt = %v, want %v", r.step, what, got, want)
	}
	if got, want := g.SessionID, s.id; got != want {
		r.t.Fatalf("step %d (%s): grant session = %v, want %v", r.step, what, got, want)
	}
	return what
}

// check compares every stored session with its model.
func (r *modelRun) check(step int, what string) {
	for si, m := range r.sessions {
		s, err := r.st.SessionByID(r.ctx, m.id)
		if err != nil {
			r.t.Fatalf("step %d (%s): SessionByID(session %d): %v", step, what, si, err)
		}
		if got, want := s.Generation, m.gen; got != want {
			r.t.Fatalf("step %d (%s): session %d stored generation = %d, want %d", step, what, si, got, want)
		}
		if got, want := s.Revoked(), m.revoked; got != want {
			r.t.Fatalf("step %d (%s): session %d stored revoked = %v, want %v", step, what, si, got, want)
		}
		if got, want := s.IdleDeadline, m.idle; !got.Equal(want) {
			r.t.Fatalf("step %d (%s): session %d stored idle deadline = %v, want %v", step, what, si, got, want)
		}
		if got, want := s.AbsoluteDeadline, m.absolute; !got.Equal(want) {
			r.t.Fatalf("step %d (%s): session %d stored absolute deadline = %v, want %v", step, what, si, got, want)
		}
	}
}

func TestModelRefreshRotation(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ctx := context.Background()
		dir, err := os.MkdirTemp("", "latchkey-model-*")
		if err != nil {
			t.Fatalf("MkdirTemp: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		st, err := sqlite.Open(ctx, filepath.Join(dir, "latchkey.db"), sqlite.Options{})
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		t.Cleanup(func() { st.Close() }) // runs before RemoveAll

		start := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
		clock := &modelClock{t: start}
		master := make([]byte, 32)
		rand.Read(master)
		eng, err := latchkey.New(ctx, st, latchkey.Config{
			MasterKey:      master,
			PasswordParams: latchkey.PasswordParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1},
			Now:            clock.Now,
			Grace:          modelGrace,
			RefreshIdleTTL: modelIdleTTL,
			SessionMaxAge:  modelMaxAge,
		})
		if err != nil {
			t.Fatalf("latchkey.New: %v", err)
		}
		if _, err := eng.Register(ctx, latchkey.NewUser{Email: modelEmail, Password: modelPassword, FullName: "Model User"}); err != nil {
			t.Fatalf("Register: %v", err)
		}
		r := &modelRun{t: t, ctx: ctx, st: st, eng: eng, clock: clock, start: start}
		r.login(modelDevices[0])
		r.check(0, "login")

		steps := rapid.IntRange(1, 30).Draw(t, "steps")
		for step := 1; step <= steps; step++ {
			r.step = step
			actions := []string{"refresh", "refresh", "refresh", "refresh", "refresh", "refresh",
				"advance", "advance", "advance", "advance", "keepalive", "keepalive", "logout", "invalid"}
			if len(r.sessions) < modelMaxLogin {
				actions = append(actions, "login")
				if !r.sessions[len(r.sessions)-1].live(r.now()) {
					actions = append(actions, "login", "login", "login", "login")
				}
			}
			var what string
			switch action := rapid.SampledFrom(actions).Draw(t, "action"); action {
			case "advance":
				var sinceRotation time.Duration // none yet: the edge is 10 s from now
				if last := r.sessions[len(r.sessions)-1]; !last.rotatedAt.IsZero() {
					sinceRotation = r.now().Sub(last.rotatedAt)
				}
				d := drawStep(t, sinceRotation)
				clock.Advance(d)
				what = fmt.Sprintf("advance %v to +%v", d, r.now().Sub(start))

			case "keepalive":
				// Wait until shortly before the session's idle deadline, then
				// refresh its current token, a few times over: a session kept
				// alive this way reaches its absolute deadline, where the idle
				// deadline stops moving.
				si := drawIndex(t, len(r.sessions), "session")
				s := r.sessions[si]
				for range rapid.IntRange(1, 5).Draw(t, "cycles") {
					before := time.Duration(rapid.IntRange(1, 600).Draw(t, "seconds_before_idle")) * time.Second
					d := max(s.idle.Sub(r.now())-before, 0)
					clock.Advance(d)
					what += fmt.Sprintf("advance %v; %s; ", d, r.refresh(si, int(s.gen), drawDevice(t)))
				}

			case "refresh":
				si := drawIndex(t, len(r.sessions), "session")
				what = r.refresh(si, drawTokenIndex(t, len(r.sessions[si].tokens)), drawDevice(t))

			case "login":
				what = r.login(drawDevice(t))

			case "logout":
				si := drawIndex(t, len(r.sessions), "session")
				s := r.sessions[si]
				i := drawTokenIndex(t, len(s.tokens))
				what = fmt.Sprintf("logout session %d with gen %d (n=%d) at +%v", si, i, s.gen, r.now().Sub(start))
				// Every token handed out verifies, so its session ends (or
				// already has): nil either way.
				if err := eng.Logout(ctx, s.tokens[i], drawDevice(t)); err != nil {
					t.Fatalf("step %d (%s): got %v, want nil", step, what, err)
				}
				s.revoked = true

			case "invalid":
				si := drawIndex(t, len(r.sessions), "session")
				s := r.sessions[si]
				i := drawTokenIndex(t, len(s.tokens))
				bad := mangle(t, s.tokens[i])
				d := drawDevice(t)
				if rapid.Bool().Draw(t, "invalid_logout") {
					what = fmt.Sprintf("logout with session %d's gen %d token mangled", si, i)
					err = eng.Logout(ctx, bad, d)
				} else {
					what = fmt.Sprintf("refresh with session %d's gen %d token mangled", si, i)
					_, err = eng.Refresh(ctx, bad, latchkey.ModeCookie, d)
				}
				if !errors.Is(err, latchkey.ErrInvalidToken) {
					t.Fatalf("step %d (%s): got %v, want %v", step, what, err, latchkey.ErrInvalidToken)
				}
			}
			t.Logf("step %d: %s", step, what)
			r.check(step, what)
		}
	})
}
