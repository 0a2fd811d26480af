package latchkey

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Algorithms recorded with each key, so that ES256 signing keys can follow.
const (
	AlgEdDSA      = "EdDSA"
	AlgHMACSHA256 = "HS256"
)

// MasterKeySize is the length of the master key in bytes (AES-256).
const MasterKeySize = 32

// sealer encrypts key material under the master key. The key id and purpose
// are additional data, so a ciphertext copied onto another key row fails to
// open.
type sealer struct{ aead cipher.AEAD }

func newSealer(master []byte) (*sealer, error) {
	if len(master) != MasterKeySize {
		return nil, invalid("master_key", fmt.Sprintf("must be %d bytes", MasterKeySize))
	}
	block, err := aes.NewCipher(master)
	if err != nil {
		return nil, fmt.Errorf("latchkey: master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("latchkey: master key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

func keyAAD(id string, purpose KeyPurpose) []byte {
	return []byte(id + "\x00" + string(purpose))
}

func (s *sealer) seal(id string, purpose KeyPurpose, plain []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plain, keyAAD(id, purpose))
}

func (s *sealer) open(id string, purpose KeyPurpose, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, fmt.Errorf("key %s: %w", id, ErrWrongMasterKey)
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], keyAAD(id, purpose))
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", id, ErrWrongMasterKey)
	}
	return plain, nil
}

type signingKey struct {
	id         string
	priv       ed25519.PrivateKey
	pub        ed25519.PublicKey
	activateAt time.Time
}

// keyring is the decrypted key set. It is replaced whole on reload, so
// readers take a snapshot under the lock and use it without holding it.
type keyring struct {
	signing     []*signingKey     // by seq, ascending
	rotation    map[string][]byte // id → key
	rotationIDs []string          // by seq, ascending
	tag         []*tagKey         // by seq, ascending
}

// tagKey is a refresh-token tag key. Like a signing key it is loaded by
// every instance before activateAt, so that no instance refuses a token
// tagged by another.
type tagKey struct {
	id         string
	key        []byte
	activateAt time.Time
}

type keyManager struct {
	store  Store
	sealer *sealer
	now    func() time.Time

	mu   sync.RWMutex
	ring *keyring
	// reloadMu serializes reloads triggered by an unknown key id; lastReload
	// rate-limits them so that a stream of made-up ids cannot hammer the store.
	reloadMu   sync.Mutex
	lastReload time.Time
}

func randomKeyID(p KeyPurpose) string {
	b := make([]byte, 9)
	rand.Read(b)
	prefix := map[KeyPurpose]string{KeySigning: "sig_", KeyRotation: "rot_", KeyTag: "tag_"}[p]
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// newKeyRecord makes and seals a fresh key of purpose p with sequence seq.
func (km *keyManager) newKeyRecord(p KeyPurpose, seq int64, activateAt time.Time) *KeyRecord {
	id := randomKeyID(p)
	now := km.now()
	k := &KeyRecord{ID: id, Purpose: p, Seq: seq, CreatedAt: now, ActivateAt: activateAt}
	switch p {
	case KeySigning:
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		k.Algorithm, k.PublicKey = AlgEdDSA, pub
		k.Ciphertext = km.sealer.seal(id, p, priv.Seed())
	default:
		secret := make([]byte, 32)
		rand.Read(secret)
		k.Algorithm = AlgHMACSHA256
		k.Ciphertext = km.sealer.seal(id, p, secret)
	}
	return k
}

// ensure creates the first key of every purpose that has none. Instances
// starting together race on InsertKeyIfAbsent with sequence 1, so exactly
// one key of each purpose wins and all of them load it.
func (km *keyManager) ensure(ctx context.Context) error {
	recs, err := km.store.Keys(ctx)
	if err != nil {
		return fmt.Errorf("latchkey: load keys: %w", err)
	}
	// A purpose whose keys are all revoked (two revocations that raced)
	// gets a new key too, after the highest sequence number used.
	usable := map[KeyPurpose]bool{}
	maxSeq := map[KeyPurpose]int64{}
	for _, r := range recs {
		usable[r.Purpose] = usable[r.Purpose] || r.RevokedAt.IsZero()
		maxSeq[r.Purpose] = max(maxSeq[r.Purpose], r.Seq)
	}
	for _, p := range []KeyPurpose{KeySigning, KeyRotation, KeyTag} {
		if usable[p] {
			continue
		}
		if _, err := km.store.InsertKeyIfAbsent(ctx, km.newKeyRecord(p, maxSeq[p]+1, km.now())); err != nil {
			return fmt.Errorf("latchkey: create %s key: %w", p, err)
		}
	}
	return km.reload(ctx)
}

// reload reads and decrypts every key.
func (km *keyManager) reload(ctx context.Context) error {
	recs, err := km.store.Keys(ctx)
	if err != nil {
		return fmt.Errorf("latchkey: load keys: %w", err)
	}
	slices.SortFunc(recs, func(a, b *KeyRecord) int { return int(a.Seq - b.Seq) })
	ring := &keyring{rotation: map[string][]byte{}}
	for _, r := range recs {
		if !r.RevokedAt.IsZero() {
			continue // a revoked key is neither published nor used
		}
		plain, err := km.sealer.open(r.ID, r.Purpose, r.Ciphertext)
		if err != nil {
			return fmt.Errorf("latchkey: %w", err)
		}
		switch r.Purpose {
		case KeySigning:
			if r.Algorithm != AlgEdDSA || len(plain) != ed25519.SeedSize {
				return fmt.Errorf("latchkey: signing key %s: unsupported algorithm %q", r.ID, r.Algorithm)
			}
			priv := ed25519.NewKeyFromSeed(plain)
			ring.signing = append(ring.signing, &signingKey{id: r.ID, priv: priv,
				pub: priv.Public().(ed25519.PublicKey), activateAt: r.ActivateAt})
		case KeyRotation:
			ring.rotation[r.ID] = plain
			ring.rotationIDs = append(ring.rotationIDs, r.ID)
		case KeyTag:
			ring.tag = append(ring.tag, &tagKey{id: r.ID, key: plain, activateAt: r.ActivateAt})
		}
	}
	if len(ring.signing) == 0 || len(ring.rotationIDs) == 0 || len(ring.tag) == 0 {
		return errors.New("latchkey: the store lacks a signing, rotation or tag key")
	}
	km.mu.Lock()
	km.ring = ring
	km.mu.Unlock()
	return nil
}

// reloadIfStale reloads the keys when an unknown key id shows up, at most
// once a second of real time (a rate limit, not a domain decision, so it
// does not use the engine's clock).
func (km *keyManager) reloadIfStale(ctx context.Context) {
	km.reloadMu.Lock()
	defer km.reloadMu.Unlock()
	now := time.Now()
	if now.Sub(km.lastReload) >= 0 && now.Sub(km.lastReload) < time.Second {
		return
	}
	km.lastReload = now
	_ = km.reload(ctx) // on failure the old ring stays in use
}

func (km *keyManager) current() *keyring {
	km.mu.RLock()
	defer km.mu.RUnlock()
	return km.ring
}

// tagKeys returns the keys a token's tag is checked against at now: any not
// yet active (another instance may already use it), the current one and the
// one before it. The first is the current one, which tags new tokens.
func (r *keyring) tagKeys(now time.Time) [][]byte {
	var current, previous, pending [][]byte
	for i := len(r.tag) - 1; i >= 0; i-- {
		k := r.tag[i]
		switch {
		case now.Before(k.activateAt):
			pending = append(pending, k.key)
		case current == nil:
			current = [][]byte{k.key}
		case previous == nil:
			previous = [][]byte{k.key}
		}
	}
	if current == nil { // only pending keys: use the oldest
		current, pending = pending[len(pending)-1:], pending[:len(pending)-1]
	}
	return append(append(current, previous...), pending...)
}

// currentTag returns the id of the key that tags new tokens at now.
func (r *keyring) currentTag(now time.Time) string {
	for i := len(r.tag) - 1; i >= 0; i-- {
		if !now.Before(r.tag[i].activateAt) {
			return r.tag[i].id
		}
	}
	return r.tag[0].id
}

// signer returns the newest active signing key at now.
func (r *keyring) signer(now time.Time) *signingKey {
	for i := len(r.signing) - 1; i >= 0; i-- {
		if !now.Before(r.signing[i].activateAt) {
			return r.signing[i]
		}
	}
	return r.signing[0]
}

func (r *keyring) verifier(kid string) *signingKey {
	for _, k := range r.signing {
		if k.id == kid {
			return k
		}
	}
	return nil
}

// currentRotation returns the id and key new sessions are opened with.
func (r *keyring) currentRotation() (string, []byte) {
	id := r.rotationIDs[len(r.rotationIDs)-1]
	return id, r.rotation[id]
}
