package latchkey

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func testRing(t *testing.T) (*keyring, *signingKey) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	k := &signingKey{id: "sig_test", priv: priv, pub: priv.Public().(ed25519.PublicKey)}
	return &keyring{signing: []*signingKey{k}}, k
}

// forge builds a compact JWS from raw header and claims maps and a signing
// function, so that each test controls every byte an attacker could.
func forge(t *testing.T, header, claims map[string]any, sign func(signing []byte) []byte) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	s := jwsEncoding.EncodeToString(h) + "." + jwsEncoding.EncodeToString(c)
	return s + "." + jwsEncoding.EncodeToString(sign([]byte(s)))
}

// TestVerifyAccessTokenPinsAlgorithmAndKey covers RFC 8725 §2.1–2.8 and RFC
// 9068 §4: only EdDSA with the key named by kid, typ at+jwt, and the
// expected iss, aud and times.
func TestVerifyAccessTokenPinsAlgorithmAndKey(t *testing.T) {
	ring, k := testRing(t)
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	claims := func() map[string]any {
		return map[string]any{"iss": "latchkey", "aud": "latchkey", "client_id": "latchkey",
			"sub": uuid.New().String(), "sid": uuid.New().String(), "jti": "j1",
			"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(), "token_version": 0, "role": "user"}
	}
	header := func() map[string]any { return map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": k.id} }
	edSign := func(s []byte) []byte { return ed25519.Sign(k.priv, s) }
	with := func(m map[string]any, key string, v any) map[string]any {
		if v == nil {
			delete(m, key)
		} else {
			m[key] = v
		}
		return m
	}
	verify := func(tok string) error {
		_, err := verifyAccessToken(ring, tok, "latchkey", "latchkey", now, 5*time.Second)
		return err
	}

	good := forge(t, header(), claims(), edSign)
	if err := verify(good); err != nil {
		t.Fatalf("well-formed token: %v", err)
	}
	// The engine's own signer produces what the verifier accepts.
	own, err := signAccessToken(k, &AccessClaims{Issuer: "latchkey", Audience: "latchkey", ClientID: "latchkey",
		UserID: uuid.New(), SessionID: uuid.New(), ID: "x", IssuedAt: now, ExpiresAt: now.Add(time.Minute), Role: RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	c, err := verifyAccessToken(ring, string(own), "latchkey", "latchkey", now, 0)
	if err != nil || c.Role != RoleAdmin || c.KeyID != k.id {
		t.Fatalf("own token: %+v, %v", c, err)
	}

	parts := strings.Split(good, ".")
	cases := map[string]struct {
		tok  string
		want error
	}{
		"alg none": {forge(t, with(header(), "alg", "none"), claims(), func([]byte) []byte { return nil }), ErrInvalidToken},
		"unsigned": {parts[0] + "." + parts[1] + ".", ErrInvalidToken},
		// Algorithm confusion: HMAC keyed with the public key.
		"HS256 with the public key": {forge(t, with(header(), "alg", "HS256"), claims(), func(s []byte) []byte {
			m := hmac.New(sha256.New, k.pub)
			m.Write(s)
			return m.Sum(nil)
		}), ErrInvalidToken},
		"unknown kid":       {forge(t, with(header(), "kid", "sig_other"), claims(), edSign), ErrInvalidToken},
		"missing kid":       {forge(t, with(header(), "kid", nil), claims(), edSign), ErrInvalidToken},
		"typ JWT":           {forge(t, with(header(), "typ", "JWT"), claims(), edSign), ErrInvalidToken},
		"no typ":            {forge(t, with(header(), "typ", nil), claims(), edSign), ErrInvalidToken},
		"wrong iss":         {forge(t, header(), with(claims(), "iss", "evil"), edSign), ErrInvalidToken},
		"wrong aud":         {forge(t, header(), with(claims(), "aud", "other-api"), edSign), ErrInvalidToken},
		"no exp":            {forge(t, header(), with(claims(), "exp", nil), edSign), ErrInvalidToken},
		"expired":           {forge(t, header(), with(claims(), "exp", now.Add(-6*time.Second).Unix()), edSign), ErrExpiredToken},
		"issued in future":  {forge(t, header(), with(claims(), "iat", now.Add(time.Minute).Unix()), edSign), ErrInvalidToken},
		"bad role":          {forge(t, header(), with(claims(), "role", "root"), edSign), ErrInvalidToken},
		"bad sub":           {forge(t, header(), with(claims(), "sub", "admin"), edSign), ErrInvalidToken},
		"tampered claims":   {parts[0] + "." + jwsEncoding.EncodeToString([]byte(`{"role":"admin"}`)) + "." + parts[2], ErrInvalidToken},
		"signed by another": {forge(t, header(), claims(), func(s []byte) []byte { _, p, _ := ed25519.GenerateKey(rand.Reader); return ed25519.Sign(p, s) }), ErrInvalidToken},
		"too long":          {good + strings.Repeat("A", maxAccessTokenLen), ErrInvalidToken},
		"empty":             {"", ErrInvalidToken},
	}
	for name, c := range cases {
		if err := verify(c.tok); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
	// Leeway: expired 4 s ago is accepted with 5 s of leeway.
	if err := verify(forge(t, header(), with(claims(), "exp", now.Add(-4*time.Second).Unix()), edSign)); err != nil {
		t.Errorf("inside leeway: %v", err)
	}
}
