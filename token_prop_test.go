package latchkey

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"pgregory.net/rapid"
)

// Property tests of the refresh token's wire format, tag and secret chain
// (DESIGN.md, "Refresh tokens").

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func drawKey(t *rapid.T, label string) []byte {
	return rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, label)
}

// drawOtherKey draws a 32-byte key that differs from every key in not. Keys
// have a fixed length because HMAC pads short keys with zeros: "k" and
// "k\x00" are the same HMAC key.
func drawOtherKey(t *rapid.T, label string, not ...[]byte) []byte {
	k := drawKey(t, label)
	for i := 0; ; i++ {
		clash := false
		for _, n := range not {
			if bytes.Equal(k, n) {
				clash = true
			}
		}
		if !clash {
			return k
		}
		k[i%len(k)]++
	}
}

func drawRefreshToken(t *rapid.T) *refreshToken {
	tok := &refreshToken{generation: rapid.Uint64().Draw(t, "generation")}
	copy(tok.sessionID[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "session_id"))
	copy(tok.secret[:], rapid.SliceOfN(rapid.Byte(), secretLen, secretLen).Draw(t, "secret"))
	return tok
}

func sameContents(a, b *refreshToken) bool {
	return a.sessionID == b.sessionID && a.generation == b.generation && a.secret == b.secret
}

// (a) encodeToken then parseToken, with the current key alone or with the
// previous one in either order, gives back the same contents; a token tagged
// under the previous key still parses while it is in the ring; the bytes are
// laid out exactly as DESIGN.md says.
func TestPropTokenRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tok := drawRefreshToken(t)
		cur := drawKey(t, "current")
		prev := drawOtherKey(t, "previous", cur)

		text := string(encodeToken(tok, cur))
		if got, want := len(text), tokenTextLen; got != want {
			t.Fatalf("len(token) = %d, want %d", got, want)
		}
		if !strings.HasPrefix(text, tokenPrefix) {
			t.Fatalf("token %q lacks prefix %q", text, tokenPrefix)
		}
		for _, ring := range [][][]byte{{cur}, {cur, prev}, {prev, cur}} {
			got, err := parseToken(text, ring)
			if err != nil {
				t.Fatalf("parseToken(encodeToken(x), %d keys) error = %v, want nil", len(ring), err)
			}
			if !sameContents(got, tok) {
				t.Fatalf("parseToken(encodeToken(x)) = %+v, want %+v", got, tok)
			}
		}

		// Encoding is deterministic.
		if got, want := string(encodeToken(tok, cur)), text; got != want {
			t.Fatalf("encodeToken twice: got %q, want %q", got, want)
		}

		// A token tagged under the previous key verifies with [current, previous].
		old := string(encodeToken(tok, prev))
		if old == text {
			t.Fatalf("tokens under different tag keys are equal: %q", old)
		}
		got, err := parseToken(old, [][]byte{cur, prev})
		if err != nil || !sameContents(got, tok) {
			t.Fatalf("parseToken(token under previous key, [current, previous]) = %+v, %v; want %+v, nil", got, err, tok)
		}

		// Wire layout: version ‖ session id ‖ generation (big-endian) ‖ secret ‖
		// first 16 bytes of HMAC-SHA256(tag key, everything before the tag).
		raw, err := base64.RawURLEncoding.DecodeString(text[len(tokenPrefix):])
		if err != nil {
			t.Fatalf("token body is not unpadded base64url: %v", err)
		}
		var want []byte
		want = append(want, 1)
		want = append(want, tok.sessionID[:]...)
		want = binary.BigEndian.AppendUint64(want, tok.generation)
		want = append(want, tok.secret[:]...)
		m := hmac.New(sha256.New, cur)
		m.Write(want)
		want = append(want, m.Sum(nil)[:16]...)
		if !bytes.Equal(raw, want) {
			t.Fatalf("token bytes = %x, want %x", raw, want)
		}
	})
}

// (b) A token verifies under no key but the one that tagged it.
func TestPropTokenUnrelatedKeys(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tok := drawRefreshToken(t)
		key := drawKey(t, "key")
		n := rapid.IntRange(0, 3).Draw(t, "unrelated_keys")
		var ring [][]byte
		for range n {
			ring = append(ring, drawOtherKey(t, "unrelated", append([][]byte{key}, ring...)...))
		}
		text := string(encodeToken(tok, key))
		got, err := parseToken(text, ring)
		if !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("parseToken with %d unrelated keys = %+v, %v; want ErrInvalidToken", n, got, err)
		}
		if got != nil {
			t.Fatalf("parseToken returned %+v with an error", got)
		}
	})
}

// (c) Any change to a valid token's text is rejected: one byte changed,
// truncation, extension, another prefix. The decoder is strict, so even a last
// character that differs only in the unused low bits is refused.
func TestPropTokenTamperRejected(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tok := drawRefreshToken(t)
		cur := drawKey(t, "current")
		prev := drawOtherKey(t, "previous", cur)
		ring := [][]byte{cur, prev}
		text := string(encodeToken(tok, rapid.SampledFrom([][]byte{cur, prev}).Draw(t, "tagged_with")))

		var bad string
		switch kind := rapid.SampledFrom([]string{"byte", "base64_char", "padding_bits", "truncate", "extend", "prefix"}).Draw(t, "change"); kind {
		case "byte": // any byte value at any position
			i := rapid.IntRange(0, len(text)-1).Draw(t, "pos")
			b := rapid.Byte().Filter(func(b byte) bool { return b != text[i] }).Draw(t, "byte")
			bad = text[:i] + string([]byte{b}) + text[i+1:]
		case "base64_char": // still well-formed base64url
			i := rapid.IntRange(len(tokenPrefix), len(text)-1).Draw(t, "pos")
			c := rapid.SampledFrom([]byte(base64URLAlphabet)).Filter(func(c byte) bool { return c != text[i] }).Draw(t, "char")
			bad = text[:i] + string([]byte{c}) + text[i+1:]
		case "padding_bits":
			// The last character carries 2 bits of the tag and 4 padding bits.
			// Another character with the same 2 data bits decodes to the same
			// bytes unless the decoder is strict; it must be refused.
			i := len(text) - 1
			v := strings.IndexByte(base64URLAlphabet, text[i])
			if v < 0 || v&0xf != 0 {
				t.Fatalf("last character %q of %q has non-zero padding bits", text[i], text)
			}
			low := rapid.IntRange(1, 15).Draw(t, "padding")
			bad = text[:i] + string([]byte{base64URLAlphabet[v|low]})
		case "truncate":
			bad = text[:rapid.IntRange(0, len(text)-1).Draw(t, "len")]
		case "extend":
			ext := rapid.OneOf(
				rapid.StringOfN(rapid.SampledFrom([]rune(base64URLAlphabet+"=")), 1, 8, -1),
				rapid.Map(rapid.SliceOfN(rapid.Byte(), 1, 8), func(b []byte) string { return string(b) }),
			).Draw(t, "extension")
			bad = text + ext
		case "prefix":
			p := rapid.OneOf(
				rapid.SampledFrom([]string{"", "lkr", "lk_", "lkr-", "LKR_", "lka_", "lkrr_", "lkr__", "_lkr_", "lkx_"}),
				rapid.Map(rapid.SliceOfN(rapid.Byte(), 0, 6), func(b []byte) string { return string(b) }),
			).Filter(func(p string) bool { return p != tokenPrefix }).Draw(t, "prefix")
			bad = p + text[len(tokenPrefix):]
		default:
			t.Fatalf("unknown change %q", kind)
		}
		if bad == text {
			t.Fatalf("test bug: change left the token unchanged")
		}
		got, err := parseToken(bad, ring)
		if !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("parseToken(%q) = %+v, %v; want ErrInvalidToken (original %q)", bad, got, err, text)
		}
	})
}

// (d) nextSecret is deterministic, computes the formula in DESIGN.md, and
// separates its inputs: changing the session id, the generation, the rotation
// key or the previous secret changes the output.
func TestPropNextSecret(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		key := drawKey(t, "rotation_key")
		var sid uuid.UUID
		copy(sid[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "session_id"))
		gen := rapid.Uint64().Draw(t, "generation")
		var prev [secretLen]byte
		copy(prev[:], rapid.SliceOfN(rapid.Byte(), secretLen, secretLen).Draw(t, "previous"))

		out := nextSecret(key, sid, gen, prev)
		if got := nextSecret(key, sid, gen, prev); got != out {
			t.Fatalf("nextSecret twice: got %x, want %x", got, out)
		}

		// HMAC-SHA256(rotation_key, "latchkey-refresh-v1" ‖ session id ‖
		// generation (8 bytes BE) ‖ previous secret).
		m := hmac.New(sha256.New, key)
		m.Write([]byte("latchkey-refresh-v1"))
		m.Write(sid[:])
		m.Write(binary.BigEndian.AppendUint64(nil, gen))
		m.Write(prev[:])
		if got, want := out[:], m.Sum(nil); !bytes.Equal(got, want) {
			t.Fatalf("nextSecret = %x, want %x", got, want)
		}

		// The domain string matters: without it the output differs.
		m = hmac.New(sha256.New, key)
		m.Write(sid[:])
		m.Write(binary.BigEndian.AppendUint64(nil, gen))
		m.Write(prev[:])
		if bytes.Equal(out[:], m.Sum(nil)) {
			t.Fatalf("nextSecret equals HMAC without the domain string")
		}
		if out == prev {
			t.Fatalf("nextSecret returned the previous secret")
		}

		var sid2 uuid.UUID
		copy(sid2[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "other_session_id"))
		if sid2 == sid {
			sid2[rapid.IntRange(0, 15).Draw(t, "sid_byte")]++
		}
		gen2 := rapid.Uint64().Filter(func(g uint64) bool { return g != gen }).Draw(t, "other_generation")
		key2 := drawOtherKey(t, "other_rotation_key", key)
		prev2 := prev
		prev2[rapid.IntRange(0, secretLen-1).Draw(t, "prev_byte")] ^= rapid.ByteMin(1).Draw(t, "prev_xor")

		for name, other := range map[string][secretLen]byte{
			"session id":      nextSecret(key, sid2, gen, prev),
			"generation":      nextSecret(key, sid, gen2, prev),
			"rotation key":    nextSecret(key2, sid, gen, prev),
			"previous secret": nextSecret(key, sid, gen, prev2),
		} {
			if other == out {
				t.Fatalf("nextSecret with another %s = %x, same as before", name, other)
			}
		}

		// hashSecret is SHA-256 and is not the secret.
		if got, want := hashSecret(out), sha256.Sum256(out[:]); !bytes.Equal(got, want[:]) {
			t.Fatalf("hashSecret = %x, want %x", got, want)
		}
		if bytes.Equal(hashSecret(out), out[:]) {
			t.Fatalf("hashSecret returned the secret")
		}
	})
}

// (e) Arbitrary input is rejected without a panic: raw bytes, and text that
// has the prefix and the exact length so that it reaches the decoder and the
// tag check.
func TestPropTokenGarbageRejected(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		keys := [][]byte{drawKey(t, "current"), drawKey(t, "previous")}
		s := rapid.OneOf(
			rapid.Map(rapid.SliceOfN(rapid.Byte(), 0, 400), func(b []byte) string { return string(b) }),
			rapid.Map(rapid.SliceOfN(rapid.Byte(), 0, 400), func(b []byte) string { return tokenPrefix + string(b) }),
			rapid.Map(rapid.StringOfN(rapid.SampledFrom([]rune(base64URLAlphabet)), tokenTextLen-len(tokenPrefix), tokenTextLen-len(tokenPrefix), -1),
				func(b string) string { return tokenPrefix + b }),
			rapid.Map(rapid.SliceOfN(rapid.Byte(), tokenBodyLen, tokenBodyLen), func(b []byte) string {
				return tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
			}),
		).Draw(t, "input")
		got, err := parseToken(s, keys)
		if !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("parseToken(%q) = %+v, %v; want ErrInvalidToken", s, got, err)
		}
		if _, err := parseToken(s, nil); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("parseToken(%q, no keys) error = %v, want ErrInvalidToken", s, err)
		}
	})
}
