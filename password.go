package latchkey

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// PasswordParams are argon2id cost parameters.
type PasswordParams struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

// DefaultPasswordParams are OWASP's argon2id recommendation (m = 19 MiB,
// t = 2, p = 1).
var DefaultPasswordParams = PasswordParams{MemoryKiB: 19 * 1024, Iterations: 2, Parallelism: 1}

const (
	saltLen          = 16
	hashLen          = 32
	minPasswordLen   = 8
	maxPasswordLen   = 128
	maxPasswordBytes = 4 * maxPasswordLen // bounds NFKC work on hostile input
	minPasswordScore = 2
)

var phcEncoding = base64.RawStdEncoding

// hashPassword returns an argon2id PHC string.
func hashPassword(password string, p PasswordParams) string {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, hashLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Iterations,
		p.Parallelism, phcEncoding.EncodeToString(salt), phcEncoding.EncodeToString(key))
}

// parsePHC splits an argon2id PHC string.
func parsePHC(phc string) (p PasswordParams, salt, key []byte, err error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("latchkey: unsupported password hash")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, fmt.Errorf("latchkey: unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &p.Parallelism); err != nil {
		return p, nil, nil, fmt.Errorf("latchkey: malformed password hash parameters")
	}
	if salt, err = phcEncoding.DecodeString(parts[4]); err != nil {
		return p, nil, nil, fmt.Errorf("latchkey: malformed password hash salt")
	}
	if key, err = phcEncoding.DecodeString(parts[5]); err != nil || len(key) == 0 {
		return p, nil, nil, fmt.Errorf("latchkey: malformed password hash")
	}
	return p, salt, key, nil
}

// checkPassword reports whether password matches the PHC string, comparing
// in constant time, and whether the hash was made with params other than
// want (so it should be re-hashed).
func checkPassword(password, phc string, want PasswordParams) (ok, stale bool) {
	p, salt, key, err := parsePHC(phc)
	if err != nil {
		return false, false
	}
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, p != want
}

// normalizePassword applies NFKC (NIST SP 800-63B §5.1.1.2) and bounds the
// input's size, so that hostile input costs little. It does not apply the
// length policy: a password set under an older policy must still sign in.
func normalizePassword(password string) (string, error) {
	if len(password) > maxPasswordBytes || !utf8.ValidString(password) {
		return "", invalid("password", "must be 8 to 128 characters")
	}
	return norm.NFKC.String(password), nil
}

// checkPasswordPolicy refuses passwords that are too short, too long, or
// easily guessed (zxcvbn score below 2), with the user's own email and name
// counted as guessable. It returns the normalized password.
func checkPasswordPolicy(password string, userInputs ...string) (string, error) {
	p, err := normalizePassword(password)
	if err != nil {
		return "", err
	}
	// Characters are counted after normalization.
	if n := utf8.RuneCountInString(p); n < minPasswordLen || n > maxPasswordLen {
		return "", invalid("password", "must be 8 to 128 characters")
	}
	if zxcvbn.PasswordStrength(p, userInputs).Score < minPasswordScore {
		return "", &ValidationError{Field: "password", Reason: "is too common or easily guessed", Err: ErrWeakPassword}
	}
	return p, nil
}

// hashPool bounds password hashing: at most workers hashes run at once
// (each needs MemoryKiB of memory) and at most queue more wait. A request
// that finds the queue full gets ErrOverloaded at once instead of piling up.
type hashPool struct {
	admit   chan struct{} // capacity workers + queue
	run     chan struct{} // capacity workers
	waiting atomic.Int64
}

func newHashPool(workers, queue int) *hashPool {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if queue < 0 {
		queue = 0
	}
	return &hashPool{admit: make(chan struct{}, workers+queue), run: make(chan struct{}, workers)}
}

// do runs fn in the pool, honouring ctx while it waits.
func (p *hashPool) do(ctx context.Context, fn func()) error {
	select {
	case p.admit <- struct{}{}:
	default:
		return ErrOverloaded
	}
	defer func() { <-p.admit }()
	p.waiting.Add(1)
	select {
	case p.run <- struct{}{}:
		p.waiting.Add(-1)
	case <-ctx.Done():
		p.waiting.Add(-1)
		return ctx.Err()
	}
	defer func() { <-p.run }()
	fn()
	return nil
}

// QueueDepth is the number of hashing requests waiting for a worker.
func (p *hashPool) queueDepth() int { return int(p.waiting.Load()) }
