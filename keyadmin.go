package latchkey

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// KeyInfo describes a stored key without its secret.
type KeyInfo struct {
	ID         string
	Purpose    KeyPurpose
	Algorithm  string
	Seq        int64
	CreatedAt  time.Time
	ActivateAt time.Time
	RevokedAt  time.Time
	// Current reports whether the key is the one in use now: signing new
	// access tokens, opening new sessions' chains, or tagging new refresh
	// tokens.
	Current bool
	// Published reports whether a signing key is in the JWKS now.
	Published bool
}

// Keys lists the stored keys, by purpose and sequence.
func (e *Engine) Keys(ctx context.Context) ([]KeyInfo, error) {
	recs, err := e.store.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("latchkey: list keys: %w", err)
	}
	if err := e.keys.reload(ctx); err != nil {
		return nil, err
	}
	now := e.now()
	ring := e.keys.current()
	published := map[string]bool{}
	for _, k := range ring.publishedSigning(now, e.cfg.AccessTTL+e.cfg.Leeway) {
		published[k.id] = true
	}
	rotID, _ := ring.currentRotation()
	current := map[string]bool{ring.signer(now).id: true, rotID: true, ring.currentTag(now): true}
	out := make([]KeyInfo, 0, len(recs))
	for _, r := range recs {
		out = append(out, KeyInfo{ID: r.ID, Purpose: r.Purpose, Algorithm: r.Algorithm, Seq: r.Seq,
			CreatedAt: r.CreatedAt, ActivateAt: r.ActivateAt, RevokedAt: r.RevokedAt,
			Published: published[r.ID], Current: current[r.ID]})
	}
	return out, nil
}

// RotateKey adds a new key of purpose p. A new signing or tag key is
// published at once and used from one Config.KeyPublishLead later, so that
// every instance and every JWKS cache has it before the first token made
// with it arrives (DESIGN.md, "Access tokens and keys"); a new rotation key
// is used for sessions opened from now on. Older keys stay for the tokens
// and sessions that use them.
func (e *Engine) RotateKey(ctx context.Context, p KeyPurpose) (*KeyInfo, error) {
	if p != KeySigning && p != KeyRotation && p != KeyTag {
		return nil, invalid("purpose", `must be "signing", "rotation" or "tag"`)
	}
	recs, err := e.store.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("latchkey: rotate %s key: %w", p, err)
	}
	var seq int64
	for _, r := range recs {
		if r.Purpose == p {
			seq = max(seq, r.Seq)
		}
	}
	now := e.now()
	activate := now
	if p != KeyRotation {
		activate = now.Add(e.cfg.KeyPublishLead)
	}
	rec := e.keys.newKeyRecord(p, seq+1, activate)
	ok, err := e.store.InsertKeyIfAbsent(ctx, rec)
	if err != nil {
		return nil, fmt.Errorf("latchkey: rotate %s key: %w", p, err)
	}
	if !ok {
		return nil, fmt.Errorf("latchkey: rotate %s key: another rotation added key %d first", p, seq+1)
	}
	e.event(ctx, &Event{At: now, Kind: EventKeyCreated, Detail: fmt.Sprintf("%s key %s, active from %s", p, rec.ID, activate.Format(time.RFC3339))})
	if err := e.keys.reload(ctx); err != nil {
		return nil, err
	}
	return &KeyInfo{ID: rec.ID, Purpose: p, Algorithm: rec.Algorithm, Seq: rec.Seq, CreatedAt: now, ActivateAt: activate}, nil
}

// RevokeKey withdraws a key at once. A signing key leaves the JWKS and its
// access tokens stop verifying; a rotation key ends every session whose chain
// it derives (reason key_compromised) and returns how many; a tag key makes
// every refresh token it tagged unverifiable. If the key was the last usable
// one of its purpose, a replacement is created and used immediately. It
// returns ErrNotFound for an unknown or already revoked key.
func (e *Engine) RevokeKey(ctx context.Context, id string) (int, error) {
	recs, err := e.store.Keys(ctx)
	if err != nil {
		return 0, fmt.Errorf("latchkey: revoke key %s: %w", id, err)
	}
	var target *KeyRecord
	var maxSeq int64
	usable := 0
	for _, r := range recs {
		if r.ID == id {
			target = r
		}
	}
	if target == nil || !target.RevokedAt.IsZero() {
		return 0, fmt.Errorf("latchkey: revoke key %s: %w", id, ErrNotFound)
	}
	for _, r := range recs {
		if r.Purpose == target.Purpose {
			maxSeq = max(maxSeq, r.Seq)
			if r.RevokedAt.IsZero() && r.ID != id {
				usable++
			}
		}
	}
	now := e.now()
	if usable == 0 {
		if _, err := e.store.InsertKeyIfAbsent(ctx, e.keys.newKeyRecord(target.Purpose, maxSeq+1, now)); err != nil {
			return 0, fmt.Errorf("latchkey: replace key %s: %w", id, err)
		}
	}
	n := 0
	err = e.store.InTx(ctx, func(tx Store) error {
		if err := tx.RevokeKey(ctx, id, now); err != nil {
			return err
		}
		if target.Purpose == KeyRotation {
			var err error
			if n, err = tx.RevokeSessionsByRotationKey(ctx, id, RevokeKeyCompromised, now); err != nil {
				return err
			}
		}
		return tx.AppendEvent(ctx, &Event{At: now, Kind: EventKeyRevoked,
			Detail: fmt.Sprintf("%s key %s revoked; %d sessions ended", target.Purpose, id, n)})
	})
	if errors.Is(err, ErrNotFound) {
		return 0, fmt.Errorf("latchkey: revoke key %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("latchkey: revoke key %s: %w", id, err)
	}
	// Two revocations that raced may each have counted the other's key as
	// the one left; ensure makes a new key for any purpose left without one.
	return n, e.keys.ensure(ctx)
}

// publishedSigning returns the signing keys the JWKS lists at now: those
// not yet active (published ahead of use), the current one, and older ones
// superseded less than keep ago (their tokens may still be live).
func (r *keyring) publishedSigning(now time.Time, keep time.Duration) []*signingKey {
	var out []*signingKey
	var supersededAt time.Time // activation of the next newer active key
	for i := len(r.signing) - 1; i >= 0; i-- {
		k := r.signing[i]
		switch {
		case now.Before(k.activateAt):
			out = append(out, k)
		case supersededAt.IsZero():
			out = append(out, k)
			supersededAt = k.activateAt
		default:
			if now.Sub(supersededAt) < keep {
				out = append(out, k)
			}
			supersededAt = k.activateAt
		}
	}
	return out
}
