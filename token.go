package latchkey

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"

	"github.com/google/uuid"
)

// Refresh token wire format (DESIGN.md, "Refresh tokens"):
//
//	"lkr_" + base64url(version ‖ session id ‖ generation ‖ secret ‖ tag)
//
// The tag is the first 16 bytes of HMAC-SHA256(tag key, everything before
// it). It is checked before any storage call, so a forged or mangled token
// costs one HMAC and reveals nothing.
const (
	tokenPrefix   = "lkr_"
	tokenVersion  = 1
	secretLen     = 32
	tagLen        = 16
	tokenBodyLen  = 1 + 16 + 8 + secretLen + tagLen
	tokenTextLen  = len(tokenPrefix) + (tokenBodyLen*8+5)/6
	chainDomain   = "latchkey-refresh-v1"
	maxDerivation = 1024
)

var tokenEncoding = base64.RawURLEncoding.Strict()

// refreshToken is a parsed, tag-checked refresh token.
type refreshToken struct {
	sessionID  uuid.UUID
	generation uint64
	secret     [secretLen]byte
}

func (t *refreshToken) signedBytes() []byte {
	b := make([]byte, 0, tokenBodyLen)
	b = append(b, tokenVersion)
	b = append(b, t.sessionID[:]...)
	b = binary.BigEndian.AppendUint64(b, t.generation)
	return append(b, t.secret[:]...)
}

// encodeToken returns the token's text with a tag under tagKey.
func encodeToken(t *refreshToken, tagKey []byte) Token {
	b := t.signedBytes()
	b = append(b, computeTag(tagKey, b)...)
	return Token(tokenPrefix + tokenEncoding.EncodeToString(b))
}

func computeTag(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)[:tagLen]
}

// parseToken checks the token's shape and tag against each of tagKeys (the
// current and the previous one) and returns its contents. Any failure is
// ErrInvalidToken; it touches no storage.
func parseToken(s string, tagKeys [][]byte) (*refreshToken, error) {
	// The length check comes first so that a megabyte of input costs nothing.
	if len(s) != tokenTextLen || s[:len(tokenPrefix)] != tokenPrefix {
		return nil, ErrInvalidToken
	}
	b, err := tokenEncoding.DecodeString(s[len(tokenPrefix):])
	if err != nil || len(b) != tokenBodyLen || b[0] != tokenVersion {
		return nil, ErrInvalidToken
	}
	msg, tag := b[:tokenBodyLen-tagLen], b[tokenBodyLen-tagLen:]
	ok := false
	for _, k := range tagKeys {
		// hmac.Equal is constant time; every key is tried so timing does not
		// say which one matched.
		if hmac.Equal(computeTag(k, msg), tag) {
			ok = true
		}
	}
	if !ok {
		return nil, ErrInvalidToken
	}
	t := &refreshToken{generation: binary.BigEndian.Uint64(b[17:25])}
	copy(t.sessionID[:], b[1:17])
	copy(t.secret[:], b[25:25+secretLen])
	return t, nil
}

// nextSecret derives generation gen's secret from generation gen-1's:
// HMAC-SHA256(rotation key, domain ‖ session id ‖ gen ‖ previous secret).
// Without the rotation key nobody can go from a stored hash or an old token
// to a working one.
func nextSecret(rotationKey []byte, sessionID uuid.UUID, gen uint64, prev [secretLen]byte) [secretLen]byte {
	m := hmac.New(sha256.New, rotationKey)
	m.Write([]byte(chainDomain))
	m.Write(sessionID[:])
	var g [8]byte
	binary.BigEndian.PutUint64(g[:], gen)
	m.Write(g[:])
	m.Write(prev[:])
	var out [secretLen]byte
	copy(out[:], m.Sum(nil))
	return out
}

func hashSecret(s [secretLen]byte) []byte {
	h := sha256.Sum256(s[:])
	return h[:]
}
