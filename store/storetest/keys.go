package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
)

var keyTests = []test{
	{"InsertKeyIfAbsentRoundTrip", testInsertKeyRoundTrip},
	{"InsertKeyIfAbsentKeepsFirst", testInsertKeyKeepsFirst},
	{"KeysOrder", testKeysOrder},
	{"KeysNone", testKeysNone},
	{"RevokeKey", testRevokeKey},
	{"RevokeSessionsByRotationKey", testRevokeSessionsByRotationKey},
}

// testRevokeKey marks one key revoked; a second revocation and an unknown id
// return ErrNotFound.
func testRevokeKey(t *testing.T, s latchkey.Store) {
	a, b := newKey(latchkey.KeySigning, 1), newKey(latchkey.KeySigning, 2)
	insertKey(t, s, a)
	insertKey(t, s, b)
	if err := s.RevokeKey(t.Context(), a.ID, base.Add(day)); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if err := s.RevokeKey(t.Context(), a.ID, base.Add(2*day)); !errors.Is(err, latchkey.ErrNotFound) {
		t.Fatalf("second RevokeKey: got %v, want ErrNotFound", err)
	}
	if err := s.RevokeKey(t.Context(), "no-such-key", base); !errors.Is(err, latchkey.ErrNotFound) {
		t.Fatalf("RevokeKey(unknown): got %v, want ErrNotFound", err)
	}
	keys, err := s.Keys(t.Context())
	if err != nil || len(keys) != 2 {
		t.Fatalf("Keys = %d, %v", len(keys), err)
	}
	wantA := *a
	wantA.RevokedAt = base.Add(day)
	checkKey(t, "revoked key", keys[0], &wantA)
	checkKey(t, "other key", keys[1], b)
}

// testRevokeSessionsByRotationKey ends the unrevoked sessions of one
// rotation key and counts them.
func testRevokeSessionsByRotationKey(t *testing.T, s latchkey.Store) {
	u := addUser(t, s)
	a := addSession(t, s, u.ID, func(x *latchkey.Session) { x.RotationKeyID = "rot-a" })
	a2 := addSession(t, s, u.ID, func(x *latchkey.Session) { x.RotationKeyID = "rot-a" })
	gone := addSession(t, s, u.ID, func(x *latchkey.Session) { x.RotationKeyID = "rot-a"; revoked(x) })
	b := addSession(t, s, u.ID, func(x *latchkey.Session) { x.RotationKeyID = "rot-b" })
	n, err := s.RevokeSessionsByRotationKey(t.Context(), "rot-a", latchkey.RevokeKeyCompromised, base.Add(time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("RevokeSessionsByRotationKey = %d, %v; want 2", n, err)
	}
	for _, x := range []*latchkey.Session{a, a2} {
		want := *x
		want.RevokedAt, want.RevokeReason = base.Add(time.Hour), latchkey.RevokeKeyCompromised
		checkSession(t, "session of the key", getSession(t, s, x.ID), &want)
	}
	checkSession(t, "already revoked session", getSession(t, s, gone.ID), gone)
	checkSession(t, "session of another key", getSession(t, s, b.ID), b)
}

// newKey returns a key record of purpose p and sequence seq.
func newKey(p latchkey.KeyPurpose, seq int64) *latchkey.KeyRecord {
	k := &latchkey.KeyRecord{
		ID:         fmt.Sprintf("%s-%d-%s", p, seq, uuid.New()),
		Purpose:    p,
		Seq:        seq,
		Algorithm:  "HS256",
		Ciphertext: hash("sealed", p, seq, "nonce and tag"),
		CreatedAt:  base.Add(time.Duration(seq) * time.Hour),
		ActivateAt: base.Add(time.Duration(seq) * time.Hour),
	}
	if p == latchkey.KeySigning {
		k.Algorithm = "EdDSA"
		k.PublicKey = hash("public", seq)
		k.ActivateAt = k.CreatedAt.Add(10*time.Minute + time.Microsecond)
	}
	return k
}

func insertKey(t *testing.T, s latchkey.Store, k *latchkey.KeyRecord) {
	t.Helper()
	ok, err := s.InsertKeyIfAbsent(t.Context(), k)
	if err != nil || !ok {
		t.Fatalf("InsertKeyIfAbsent(%s %d) = %v, %v; want true, nil", k.Purpose, k.Seq, ok, err)
	}
}

// testInsertKeyRoundTrip stores keys with and without a public key and with
// the optional times set and zero.
func testInsertKeyRoundTrip(t *testing.T, s latchkey.Store) {
	signing := newKey(latchkey.KeySigning, 1)
	signing.RetiredAt = base.Add(day)
	signing.RevokedAt = base.Add(2*day + time.Microsecond)
	tag := newKey(latchkey.KeyTag, 1)
	for _, k := range []*latchkey.KeyRecord{signing, tag} {
		insertKey(t, s, k)
	}
	keys, err := s.Keys(t.Context())
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	if len(keys) != 2 {
		t.Fatalf("Keys: got %d keys, want 2", len(keys))
	}
	checkKey(t, "signing key", keys[0], signing)
	checkKey(t, "tag key", keys[1], tag)
	if !keys[1].RetiredAt.IsZero() || !keys[1].RevokedAt.IsZero() || len(keys[1].PublicKey) != 0 {
		t.Errorf("tag key: RetiredAt, RevokedAt, PublicKey = %v, %v, %x; want zero, zero, empty",
			keys[1].RetiredAt, keys[1].RevokedAt, keys[1].PublicKey)
	}
}

// testInsertKeyKeepsFirst inserts a second key with the same purpose and
// sequence: it reports false and the first key stays as it was.
func testInsertKeyKeepsFirst(t *testing.T, s latchkey.Store) {
	first := newKey(latchkey.KeyRotation, 1)
	insertKey(t, s, first)
	second := newKey(latchkey.KeyRotation, 1)
	second.Algorithm = "HS512"
	second.Ciphertext = hash("another")
	second.CreatedAt = base.Add(time.Minute)
	ok, err := s.InsertKeyIfAbsent(t.Context(), second)
	if err != nil || ok {
		t.Fatalf("InsertKeyIfAbsent(same purpose and seq) = %v, %v; want false, nil", ok, err)
	}
	// Another purpose with the same sequence is a different key.
	other := newKey(latchkey.KeyTag, 1)
	insertKey(t, s, other)
	keys, err := s.Keys(t.Context())
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	if len(keys) != 2 {
		t.Fatalf("Keys: got %d keys, want 2", len(keys))
	}
	checkKey(t, "first rotation key", keys[0], first)
	checkKey(t, "tag key", keys[1], other)
}

// testKeysOrder inserts keys out of order; Keys returns them by purpose,
// then sequence.
func testKeysOrder(t *testing.T, s latchkey.Store) {
	in := []*latchkey.KeyRecord{
		newKey(latchkey.KeyTag, 1),
		newKey(latchkey.KeySigning, 2),
		newKey(latchkey.KeyRotation, 10),
		newKey(latchkey.KeySigning, 1),
		newKey(latchkey.KeyRotation, 2),
		newKey(latchkey.KeyTag, 3),
		newKey(latchkey.KeyRotation, 1),
	}
	for _, k := range in {
		insertKey(t, s, k)
	}
	want := slices.Clone(in)
	slices.SortFunc(want, func(a, b *latchkey.KeyRecord) int {
		return cmp.Or(cmp.Compare(a.Purpose, b.Purpose), cmp.Compare(a.Seq, b.Seq))
	})
	got, err := s.Keys(t.Context())
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("Keys: got %d keys, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Purpose != want[i].Purpose || got[i].Seq != want[i].Seq {
			t.Errorf("Keys[%d] = %s %d, want %s %d", i, got[i].Purpose, got[i].Seq, want[i].Purpose, want[i].Seq)
			continue
		}
		checkKey(t, fmt.Sprintf("Keys[%d]", i), got[i], want[i])
	}
}

func testKeysNone(t *testing.T, s latchkey.Store) {
	keys, err := s.Keys(t.Context())
	if err != nil || len(keys) != 0 {
		t.Errorf("Keys on an empty store = %d keys, %v; want 0, nil", len(keys), err)
	}
}
