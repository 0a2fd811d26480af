package verifier_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

// Helpers that build JWS compact serializations by hand, so that tests can
// produce exactly the malformed or forged tokens an attacker would.

var b64 = base64.RawURLEncoding

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// with returns a copy of m with k set to v (or deleted, for a nil v).
func with(m map[string]any, k string, v any) map[string]any {
	out := maps.Clone(m)
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func encodePart(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b64.EncodeToString(b)
}

func decodePart(t *testing.T, part string) map[string]any {
	t.Helper()
	b, err := b64.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func signingInput(header, claims map[string]any) string {
	return encodePart(header) + "." + encodePart(claims)
}

// unsigned is an "alg": "none" token (RFC 7519 §6.1), its signature empty.
func unsigned(header, claims map[string]any) string {
	return signingInput(header, claims) + "."
}

// hmacSigned is an HS256 token keyed with key: the algorithm-confusion
// attack when key is the server's public key.
func hmacSigned(key []byte, header, claims map[string]any) string {
	in := signingInput(header, claims)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return in + "." + b64.EncodeToString(m.Sum(nil))
}

func edSigned(priv ed25519.PrivateKey, header, claims map[string]any) string {
	in := signingInput(header, claims)
	return in + "." + b64.EncodeToString(ed25519.Sign(priv, []byte(in)))
}

// resign keeps a genuine token's header and signature but replaces its
// claims.
func resign(token string, claims map[string]any) string {
	p := strings.Split(token, ".")
	return p[0] + "." + encodePart(claims) + "." + p[2]
}

// swapSignature puts other's signature on token.
func swapSignature(token, other string) string {
	p, q := strings.Split(token, "."), strings.Split(other, ".")
	return p[0] + "." + p[1] + "." + q[2]
}
