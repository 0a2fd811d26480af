package latchkey

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Refresh trades a refresh token for a new grant (DESIGN.md, "Refresh
// tokens"). The token must belong to a session opened in mode; d is the
// presenting client.
//
// The happy path is one conditional write. If it matches nothing, the
// session is read and the token classified, always verified before anything
// specific is said about the session:
//   - a rotation the database lost (the token is one generation ahead and
//     matches next_hash): the session continues from there;
//   - the previous generation, presented again within the grace window by the
//     client that rotated it: answered with the current token, unchanged;
//   - any other older generation: reuse, the session is revoked
//     (ErrTokenReused).
//
// It returns ErrInvalidToken (nothing changes) for a token that does not
// verify, is in the wrong mode or is more than 1,024 generations behind;
// ErrRevokedToken, ErrExpiredToken or ErrInactiveUser for a verified token
// whose session or user can no longer be used.
func (e *Engine) Refresh(ctx context.Context, token string, mode Mode, d Device) (*Grant, error) {
	ring := e.keys.current()
	now := e.now()
	// The tag is checked first: a forged, mangled or truncated token costs
	// one HMAC and no storage call.
	t, err := parseToken(token, ring.tagKeys(now))
	if err != nil {
		return nil, err
	}
	if g, err := e.rotate(ctx, t, mode, d, now, ring.recentRotation(happyPathKeys), t.generation, false); !errors.Is(err, ErrNotFound) {
		return g, err
	}
	return e.refreshSlow(ctx, t, mode, d, now)
}

// RefreshTokenSession returns the session id of a refresh token whose tag
// verifies (one HMAC, no storage call), so that a server can key a
// per-session rate limit by it: a forged token naming someone else's
// session id cannot spend that session's budget.
func (e *Engine) RefreshTokenSession(token string) (uuid.UUID, bool) {
	t, err := parseToken(token, e.keys.current().tagKeys(e.now()))
	if err != nil {
		return uuid.Nil, false
	}
	return t.sessionID, true
}

// rotate performs the conditional write advancing the session from
// generation from (matching the token's hash against the current hash, or
// with matchNext against the next hash) to the token's generation + 1.
func (e *Engine) rotate(ctx context.Context, t *refreshToken, mode Mode, d Device, now time.Time,
	keys []rotationKey, from uint64, matchNext bool) (*Grant, error) {
	to := t.generation + 1
	nexts := make(map[string][secretLen]byte, len(keys))
	r := Rotation{
		ID: t.sessionID, Mode: mode, From: from, Hash: hashSecret(t.secret), MatchNext: matchNext, To: to,
		Now: now, IdleDeadline: now.Add(e.cfg.RefreshIdleTTL), UserAgent: d.UserAgent, DeviceID: d.ID,
	}
	for i, k := range keys {
		next := nextSecret(k.key, t.sessionID, to, t.secret)
		after := nextSecret(k.key, t.sessionID, to+1, next)
		nexts[k.id] = next
		h := RotationHashes{RotationKeyID: k.id, CurrentHash: hashSecret(next), NextHash: hashSecret(after)}
		if i == 0 {
			r.RotationKeyID, r.CurrentHash, r.NextHash = h.RotationKeyID, h.CurrentHash, h.NextHash
		} else {
			r.Alternatives = append(r.Alternatives, h)
		}
	}
	res, err := e.store.RotateSession(ctx, r)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("latchkey: rotate session %s: %w", t.sessionID, err)
	}
	next, ok := nexts[res.RotationKeyID]
	if !ok {
		return nil, fmt.Errorf("latchkey: rotate session %s: the store applied unknown key %q", t.sessionID, res.RotationKeyID)
	}
	return e.grant(t.sessionID, to, next, res, now)
}

// rotationKey is a rotation key with its id.
type rotationKey struct {
	id  string
	key []byte
}

// happyPathKeys is how many of the newest rotation keys the first write
// offers hashes for: sessions opened before a key rotation or two still
// rotate in one round trip, at two HMACs per key.
const happyPathKeys = 3

// recentRotation returns the newest n rotation keys, newest first.
func (r *keyring) recentRotation(n int) []rotationKey {
	var out []rotationKey
	for i := len(r.rotationIDs) - 1; i >= 0 && len(out) < n; i-- {
		id := r.rotationIDs[i]
		out = append(out, rotationKey{id: id, key: r.rotation[id]})
	}
	return out
}

func (e *Engine) grant(sid uuid.UUID, gen uint64, secret [secretLen]byte, r *Rotated, now time.Time) (*Grant, error) {
	access, exp, err := e.issueAccess(r.UserID, sid, r.Role, r.TokenVersion, now, r.IdleDeadline)
	if err != nil {
		return nil, err
	}
	ring := e.keys.current()
	return &Grant{
		AccessToken: access, AccessExpiresAt: exp,
		RefreshToken:     encodeToken(&refreshToken{sessionID: sid, generation: gen, secret: secret}, ring.tagKeys(now)[0]),
		RefreshExpiresAt: r.IdleDeadline,
		UserID:           r.UserID, SessionID: sid, Role: r.Role,
	}, nil
}

// maxClassifyAttempts bounds how often the slow path rereads a session that
// concurrent requests keep changing under it.
const maxClassifyAttempts = 4

func (e *Engine) refreshSlow(ctx context.Context, t *refreshToken, mode Mode, d Device, now time.Time) (*Grant, error) {
	for range maxClassifyAttempts {
		s, key, err := e.loadForToken(ctx, t)
		if err != nil {
			return nil, err
		}
		// Read the clock after the row: the rotation that beat this request
		// took its time after this request's first reading, and would
		// otherwise look as if it happened in the future (outside the grace
		// window), turning a concurrent tab into "reuse".
		now = e.now()
		v := e.verify(ctx, s, t, key, now, d)
		if v.err != nil {
			return nil, v.err
		}
		if err := e.usable(ctx, s, mode, now); err != nil {
			return nil, err
		}
		n, m := s.Generation, t.generation
		var g *Grant
		switch {
		case m == n+1:
			// The client holds a token whose rotation the database lost
			// (DESIGN.md, "Durability"): continue from it.
			g, err = e.rotate(ctx, t, mode, d, now, []rotationKey{{s.RotationKeyID, key}}, n, true)
			if err == nil {
				e.event(ctx, &Event{At: now, UserID: s.UserID, SessionID: s.ID, Kind: EventLostRotation,
					IP: d.IP, UserAgent: d.UserAgent, Detail: fmt.Sprintf("generation %d presented, store had %d", m, n)})
			}
		case m == n:
			// Verified and current, so the happy path missed only because the
			// session uses a rotation key older than the ones it offered.
			g, err = e.rotate(ctx, t, mode, d, now, []rotationKey{{s.RotationKeyID, key}}, n, false)
		case m == n-1 && e.inGrace(s, now, d):
			g, err = e.graceAnswer(ctx, s, v.current, now, d)
		default:
			return nil, e.reuse(ctx, s, m, now, d)
		}
		if !errors.Is(err, ErrNotFound) {
			return g, err
		}
		// The session changed between the read and the write: classify again.
	}
	return nil, fmt.Errorf("latchkey: refresh session %s: too much contention", t.sessionID)
}

// loadForToken reads the token's session and the rotation key of its chain.
func (e *Engine) loadForToken(ctx context.Context, t *refreshToken) (*Session, []byte, error) {
	s, err := e.store.SessionByID(ctx, t.sessionID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, ErrInvalidToken
	}
	if err != nil {
		return nil, nil, fmt.Errorf("latchkey: read session %s: %w", t.sessionID, err)
	}
	key, ok := e.keys.current().rotation[s.RotationKeyID]
	if !ok {
		e.keys.reloadIfStale(ctx)
		if key, ok = e.keys.current().rotation[s.RotationKeyID]; !ok {
			return nil, nil, ErrInvalidToken
		}
	}
	return s, key, nil
}

type verified struct {
	current [secretLen]byte // the session's current secret, when derived
	err     error
}

// verify checks that t belongs to session s's chain: generation n+1 against
// next_hash, n against current_hash, older ones by deriving forward to n (at
// most maxDerivation steps). Anything else is ErrInvalidToken.
func (e *Engine) verify(ctx context.Context, s *Session, t *refreshToken, key []byte, now time.Time, d Device) verified {
	n, m := s.Generation, t.generation
	h := hashSecret(t.secret)
	switch {
	case m == n+1:
		if subtle.ConstantTimeCompare(h, s.NextHash) == 1 {
			return verified{}
		}
	case m == n:
		if subtle.ConstantTimeCompare(h, s.CurrentHash) == 1 {
			return verified{current: t.secret}
		}
	case m < n && n-m > maxDerivation:
		e.event(ctx, &Event{At: now, UserID: s.UserID, SessionID: s.ID, Kind: EventStaleToken, IP: d.IP, UserAgent: d.UserAgent,
			Detail: fmt.Sprintf("generation %d presented, session at %d; not derived", m, n)})
	case m < n:
		sec := t.secret
		for g := m + 1; g <= n; g++ {
			sec = nextSecret(key, s.ID, g, sec)
		}
		if subtle.ConstantTimeCompare(hashSecret(sec), s.CurrentHash) == 1 {
			return verified{current: sec}
		}
	}
	return verified{err: ErrInvalidToken}
}

// usable reports why a verified token's session cannot be used, if it
// cannot.
func (e *Engine) usable(ctx context.Context, s *Session, mode Mode, now time.Time) error {
	switch {
	case s.Revoked():
		return ErrRevokedToken
	case s.Mode != mode:
		return fmt.Errorf("%w: session is %s mode", ErrInvalidToken, s.Mode)
	case !now.Before(s.IdleDeadline) || !now.Before(s.AbsoluteDeadline):
		return ErrExpiredToken
	}
	u, err := e.store.UserByID(ctx, s.UserID)
	if errors.Is(err, ErrNotFound) {
		return ErrRevokedToken // the user was deleted
	}
	if err != nil {
		return fmt.Errorf("latchkey: read user %s: %w", s.UserID, err)
	}
	if !u.IsActive {
		return ErrInactiveUser
	}
	return nil
}

// inGrace reports whether a second use of the previous generation by d is a
// concurrent tab or a retry rather than reuse: the rotation happened less than
// the grace window ago (a rotation time in the future does not count) by the
// same user agent and device id.
func (e *Engine) inGrace(s *Session, now time.Time, d Device) bool {
	if e.cfg.Grace <= 0 || s.RotatedAt.IsZero() {
		return false
	}
	age := now.Sub(s.RotatedAt)
	return age >= 0 && age < e.cfg.Grace && s.RotatedUserAgent == d.UserAgent && s.RotatedDeviceID == d.ID
}

// graceAnswer returns the session's current token (re-derived, never
// stored) after the store re-checks, in the statement that records the
// grace_answer event, that the session is still at this generation and
// usable.
func (e *Engine) graceAnswer(ctx context.Context, s *Session, current [secretLen]byte, now time.Time, d Device) (*Grant, error) {
	r, err := e.store.RecordGraceAnswer(ctx, s.Generation, s.CurrentHash, &Event{
		At: now, UserID: s.UserID, SessionID: s.ID, Kind: EventGraceAnswer, IP: d.IP, UserAgent: d.UserAgent,
		Detail: fmt.Sprintf("generation %d answered with %d", s.Generation-1, s.Generation),
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("latchkey: grace answer for session %s: %w", s.ID, err)
	}
	return e.grant(s.ID, s.Generation, current, r, now)
}

// reuse revokes the session of a spent token and records why (RFC 9700
// §4.14.2: the authorization server cannot tell the thief from the owner, so
// it ends the session for both).
func (e *Engine) reuse(ctx context.Context, s *Session, m uint64, now time.Time, d Device) error {
	cause := reuseCause(s, m, now, d, e.cfg.Grace)
	err := e.store.InTx(ctx, func(tx Store) error {
		if err := tx.RevokeSession(ctx, s.ID, RevokeReuseDetected, now); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		return tx.AppendEvent(ctx, &Event{At: now, UserID: s.UserID, SessionID: s.ID, Kind: EventReuseDetected,
			IP: d.IP, UserAgent: d.UserAgent, Detail: cause})
	})
	if err != nil {
		return fmt.Errorf("latchkey: revoke reused session %s: %w", s.ID, err)
	}
	e.log.WarnContext(ctx, "refresh token reuse; session revoked", "user_id", s.UserID, "session_id", s.ID, "cause", cause)
	return ErrTokenReused
}

func reuseCause(s *Session, m uint64, now time.Time, d Device, grace time.Duration) string {
	n := s.Generation
	switch {
	case m+1 < n:
		return fmt.Sprintf("generation %d presented, session at %d (older than the previous generation)", m, n)
	case grace <= 0:
		return fmt.Sprintf("generation %d presented after rotation to %d; grace window disabled", m, n)
	case s.RotatedUserAgent != d.UserAgent || s.RotatedDeviceID != d.ID:
		return fmt.Sprintf("generation %d presented by a different user agent or device than the one that rotated it", m)
	default:
		return fmt.Sprintf("generation %d presented %s after rotation, outside the %s grace window", m, now.Sub(s.RotatedAt), grace)
	}
}
