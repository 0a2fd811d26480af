package latchkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
)

// accessTokenType is the JWT "typ" of access tokens (RFC 9068 §2.1); it stops
// an ID token or any other JWT signed by the same key being accepted as one.
const accessTokenType = "at+jwt"

// AccessClaims are the claims of a verified access token (RFC 9068 §2.2).
type AccessClaims struct {
	Issuer       string
	Audience     string
	ClientID     string
	UserID       uuid.UUID // "sub"
	SessionID    uuid.UUID // "sid"
	ID           string    // "jti"
	IssuedAt     time.Time
	ExpiresAt    time.Time
	TokenVersion int64
	Role         Role
	KeyID        string
}

type accessClaimsJSON struct {
	Issuer       string `json:"iss"`
	Audience     string `json:"aud"`
	ClientID     string `json:"client_id"`
	Subject      string `json:"sub"`
	SessionID    string `json:"sid"`
	ID           string `json:"jti"`
	IssuedAt     int64  `json:"iat"`
	ExpiresAt    int64  `json:"exp"`
	TokenVersion int64  `json:"token_version"`
	Role         Role   `json:"role"`
}

var jwsEncoding = base64.RawURLEncoding

// signAccessToken makes an EdDSA JWS compact serialization. Signing is done
// by hand (it is three base64 strings and one ed25519.Sign); verification
// goes through go-jose with the algorithm pinned.
func signAccessToken(k *signingKey, c *AccessClaims) (Token, error) {
	header, err := json.Marshal(map[string]string{"alg": AlgEdDSA, "typ": accessTokenType, "kid": k.id})
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(accessClaimsJSON{
		Issuer: c.Issuer, Audience: c.Audience, ClientID: c.ClientID,
		Subject: c.UserID.String(), SessionID: c.SessionID.String(), ID: c.ID,
		IssuedAt: c.IssuedAt.Unix(), ExpiresAt: c.ExpiresAt.Unix(),
		TokenVersion: c.TokenVersion, Role: c.Role,
	})
	if err != nil {
		return "", err
	}
	signing := jwsEncoding.EncodeToString(header) + "." + jwsEncoding.EncodeToString(body)
	sig := ed25519.Sign(k.priv, []byte(signing))
	return Token(signing + "." + jwsEncoding.EncodeToString(sig)), nil
}

func newJTI() string {
	b := make([]byte, 16)
	rand.Read(b)
	return jwsEncoding.EncodeToString(b)
}

// maxAccessTokenLen bounds the input before any parsing work.
const maxAccessTokenLen = 4096

// verifyAccessToken checks an access token against the key ring, pinning the
// algorithm to EdDSA and the key to the header's kid (RFC 8725 §3.1–3.2), and
// checks typ, iss, aud and the times with leeway. It returns ErrExpiredToken
// for an expired token and ErrInvalidToken for everything else.
func verifyAccessToken(ring *keyring, raw, issuer, audience string, now time.Time, leeway time.Duration) (*AccessClaims, error) {
	if len(raw) == 0 || len(raw) > maxAccessTokenLen {
		return nil, ErrInvalidToken
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil || len(tok.Headers) != 1 {
		return nil, ErrInvalidToken
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != accessTokenType || h.Algorithm != AlgEdDSA {
		return nil, ErrInvalidToken
	}
	k := ring.verifier(h.KeyID)
	if k == nil {
		return nil, fmt.Errorf("%w: unknown key id", ErrInvalidToken)
	}
	var std jwt.Claims
	var c accessClaimsJSON
	if err := tok.Claims(k.pub, &std, &c); err != nil {
		return nil, ErrInvalidToken
	}
	if std.Expiry == nil || std.IssuedAt == nil || c.ID == "" {
		return nil, ErrInvalidToken
	}
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{audience}, Time: now}, leeway)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return nil, ErrExpiredToken
	case err != nil:
		return nil, ErrInvalidToken
	}
	uid, err1 := uuid.Parse(c.Subject)
	sid, err2 := uuid.Parse(c.SessionID)
	if err1 != nil || err2 != nil || !c.Role.Valid() {
		return nil, ErrInvalidToken
	}
	return &AccessClaims{
		Issuer: c.Issuer, Audience: c.Audience, ClientID: c.ClientID, UserID: uid, SessionID: sid,
		ID: c.ID, IssuedAt: time.Unix(c.IssuedAt, 0).UTC(), ExpiresAt: time.Unix(c.ExpiresAt, 0).UTC(),
		TokenVersion: c.TokenVersion, Role: c.Role, KeyID: k.id,
	}, nil
}

// JWKS is a JSON Web Key Set (RFC 7517 §5) of the public signing keys, as
// served at /.well-known/jwks.json.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWK is one public key (RFC 8037 for Ed25519).
type JWK struct {
	KeyType   string `json:"kty"`
	Curve     string `json:"crv,omitempty"`
	X         string `json:"x,omitempty"`
	KeyID     string `json:"kid"`
	Use       string `json:"use"`
	Algorithm string `json:"alg"`
}

func (r *keyring) jwks(now time.Time, keep time.Duration) JWKS {
	out := JWKS{Keys: []JWK{}}
	for _, k := range r.publishedSigning(now, keep) {
		out.Keys = append(out.Keys, JWK{KeyType: "OKP", Curve: "Ed25519",
			X: jwsEncoding.EncodeToString(k.pub), KeyID: k.id, Use: "sig", Algorithm: AlgEdDSA})
	}
	return out
}

// peekKeyID reads the kid of an unverified JWS header, only to decide
// whether reloading the keys could help.
func peekKeyID(raw string) (string, bool) {
	if len(raw) > maxAccessTokenLen {
		return "", false
	}
	i := strings.IndexByte(raw, '.')
	if i <= 0 {
		return "", false
	}
	b, err := jwsEncoding.DecodeString(raw[:i])
	if err != nil {
		return "", false
	}
	var h struct {
		KID string `json:"kid"`
	}
	if json.Unmarshal(b, &h) != nil || h.KID == "" {
		return "", false
	}
	return h.KID, true
}
