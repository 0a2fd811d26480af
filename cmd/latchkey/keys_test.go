package main

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/store/sqlite"
)

// listedKey is one row of 'latchkey keys list'.
type listedKey struct {
	id, purpose, algorithm, seq, created, activeFrom, current, published, revoked string
}

// keysList runs 'latchkey keys list' and parses its table.
func keysList(t *testing.T, env map[string]string) []listedKey {
	t.Helper()
	code, stdout, stderr := runCLI(t, t.Context(), env, "keys", "list")
	if code != 0 || stderr != "" {
		t.Fatalf("keys list: exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if got := strings.Join(strings.Fields(lines[0]), " "); got != "ID PURPOSE ALGORITHM SEQ CREATED ACTIVE FROM CURRENT PUBLISHED REVOKED" {
		t.Fatalf("keys list header %q", lines[0])
	}
	var out []listedKey
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 9 {
			t.Fatalf("keys list row %q: %d columns, want 9", l, len(f))
		}
		out = append(out, listedKey{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8]})
	}
	return out
}

func findKey(keys []listedKey, id string) (listedKey, bool) {
	for _, k := range keys {
		if k.id == id {
			return k, true
		}
	}
	return listedKey{}, false
}

func TestKeys(t *testing.T) {
	isolate(t)
	db, env := keyedDB(t)

	keys := keysList(t, env)
	if len(keys) != 3 {
		t.Fatalf("a new database has %d keys, want a signing, a rotation and a tag key: %v", len(keys), keys)
	}
	var sig1, rot1, tag1 listedKey
	for _, k := range keys {
		if k.seq != "1" || k.current != "yes" || k.revoked != "-" {
			t.Errorf("key %+v: want seq 1, current, not revoked", k)
		}
		if _, err := time.Parse(time.RFC3339, k.created); err != nil {
			t.Errorf("key %s created %q: %v", k.id, k.created, err)
		}
		switch k.purpose {
		case "signing":
			sig1 = k
			if k.algorithm != "EdDSA" || k.published != "yes" {
				t.Errorf("signing key %+v: want EdDSA, published", k)
			}
		case "rotation":
			rot1 = k
		case "tag":
			tag1 = k
		}
		if k.purpose != "signing" && k.published != "-" {
			t.Errorf("%s key %s published %q, want -", k.purpose, k.id, k.published)
		}
	}

	// A session opened now derives its chain from rot1.
	e := openTestEngine(t, db, testKey, nil)
	if _, err := e.Register(t.Context(), latchkey.NewUser{Email: "a@example.com", Password: strongPassword}); err != nil {
		t.Fatal(err)
	}
	g, err := e.Login(t.Context(), "a@example.com", strongPassword, latchkey.ModeMobile, latchkey.Device{})
	if err != nil {
		t.Fatal(err)
	}

	// A new signing key is published now and signs in 5 minutes.
	before := time.Now().UTC().Truncate(time.Second)
	code, stdout, stderr := runCLI(t, t.Context(), env, "keys", "rotate")
	if code != 0 || stderr != "" {
		t.Fatalf("keys rotate: exit %d, stderr %q", code, stderr)
	}
	m := regexp.MustCompile(`^created signing key (sig_\S+) \(seq 2\), active from (\S+) \(in 5m0s\); published in the JWKS now, signs access tokens from then on\n$`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("keys rotate printed %q", stdout)
	}
	if at, err := time.Parse(time.RFC3339, m[2]); err != nil || at.Before(before.Add(defaultKeyPublishLead)) {
		t.Errorf("active from %s (%v), want %s after %s", m[2], err, defaultKeyPublishLead, before)
	}
	sig2, ok := findKey(keysList(t, env), m[1])
	if !ok || sig2.current != "no" || sig2.published != "yes" || sig2.activeFrom != m[2] {
		t.Errorf("new signing key listed as %+v; want not current, published, active from %s", sig2, m[2])
	}
	if k, _ := findKey(keysList(t, env), sig1.id); k.current != "yes" {
		t.Errorf("old signing key %+v: want still current until the new one activates", k)
	}

	// A new rotation key is used at once.
	code, stdout, _ = runCLI(t, t.Context(), env, "keys", "rotate", "--purpose", "rotation")
	m = regexp.MustCompile(`^created rotation key (rot_\S+) \(seq 2\), active from \S+ \(now\); sessions opened from then on use it\n$`).FindStringSubmatch(stdout)
	if code != 0 || m == nil {
		t.Fatalf("keys rotate --purpose rotation: exit %d, stdout %q", code, stdout)
	}
	rot2 := m[1]
	keys = keysList(t, env)
	if k, _ := findKey(keys, rot2); k.current != "yes" {
		t.Errorf("new rotation key %+v: want current", k)
	}
	if k, _ := findKey(keys, rot1.id); k.current != "no" {
		t.Errorf("old rotation key %+v: want no longer current", k)
	}

	// Revoking rot1 ends the session it derives, and says so.
	code, stdout, stderr = runCLI(t, t.Context(), env, "keys", "revoke", rot1.id)
	if want := "revoked rotation key " + rot1.id + ": 1 sessions ended (reason key_compromised); running servers reload keys within 30s\n"; code != 0 || stdout != want {
		t.Fatalf("keys revoke %s: exit %d, stdout %q, stderr %q; want %q", rot1.id, code, stdout, stderr, want)
	}
	s, err := e.Store().SessionByID(t.Context(), g.SessionID)
	if err != nil || s.RevokedAt.IsZero() || s.RevokeReason != latchkey.RevokeKeyCompromised {
		t.Errorf("session after its rotation key was revoked: %+v, %v; want revoked, key_compromised", s, err)
	}
	if k, _ := findKey(keysList(t, env), rot1.id); k.revoked == "-" {
		t.Errorf("revoked key listed as %+v", k)
	}

	// Revoking the only tag key replaces it.
	code, stdout, _ = runCLI(t, t.Context(), env, "keys", "revoke", tag1.id, "--database-url", "sqlite:"+db)
	if code != 0 || !regexp.MustCompile(`^revoked tag key `+regexp.QuoteMeta(tag1.id)+`: the refresh tokens it tagged no longer verify; replaced by tag_\S+, active now; running servers`).MatchString(stdout) {
		t.Errorf("keys revoke %s: exit %d, stdout %q", tag1.id, code, stdout)
	}

	// A signing key leaves the JWKS.
	code, stdout, _ = runCLI(t, t.Context(), env, "keys", "revoke", "--", sig2.id)
	if want := "revoked signing key " + sig2.id + ": it left the JWKS and the access tokens it signed no longer verify; running servers reload keys within 30s\n"; code != 0 || stdout != want {
		t.Errorf("keys revoke %s: exit %d, stdout %q, want %q", sig2.id, code, stdout, want)
	}
	if err := e.ReloadKeys(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, k := range e.JWKS().Keys {
		if k.KeyID == sig2.id {
			t.Errorf("the JWKS still lists revoked key %s", sig2.id)
		}
	}

	for _, tt := range []struct{ id, want string }{
		{"sig_nonexistent", "latchkey keys revoke: no such key sig_nonexistent (see 'latchkey keys list')"},
		{rot1.id, "latchkey keys revoke: key " + rot1.id + " was already revoked at "},
	} {
		code, stdout, stderr := runCLI(t, t.Context(), env, "keys", "revoke", tt.id)
		if code != 1 || stdout != "" || !strings.HasPrefix(stderr, tt.want) {
			t.Errorf("keys revoke %s: exit %d, stdout %q, stderr %q; want 1 and %q", tt.id, code, stdout, stderr, tt.want)
		}
		oneLine(t, stderr)
	}
}

// TestKeysListAccessTTL checks that keys list judges which retired signing
// keys are published with the access-token lifetime it is given, as the
// server does.
func TestKeysListAccessTTL(t *testing.T) {
	isolate(t)
	db := filepath.Join(t.TempDir(), "auth.db")
	env := map[string]string{"LATCHKEY_DATABASE_URL": "sqlite:" + db, "LATCHKEY_MASTER_KEY": testKey}
	// A signing key that became active 20 minutes ago supersedes the first:
	// with 15-minute access tokens the first is no longer published, with
	// 1-hour ones it still is.
	past := time.Now().Add(-20*time.Minute - defaultKeyPublishLead)
	e := openTestEngine(t, db, testKey, func() time.Time { return past })
	k, err := e.RotateKey(t.Context(), latchkey.KeySigning)
	if err != nil {
		t.Fatal(err)
	}
	var first string
	for _, l := range keysList(t, env) {
		if l.purpose == "signing" && l.id != k.ID {
			first = l.id
		}
	}
	for _, tt := range []struct {
		ttl, published string
	}{{"15m", "no"}, {"1h", "yes"}} {
		env["LATCHKEY_ACCESS_TTL"] = tt.ttl
		if got, _ := findKey(keysList(t, env), first); got.published != tt.published {
			t.Errorf("access TTL %s: retired key published %q, want %q", tt.ttl, got.published, tt.published)
		}
	}
}

// TestDefaultKeyPublishLead keeps the help and the rotate message true to
// the library's default.
func TestDefaultKeyPublishLead(t *testing.T) {
	store, err := sqlite.Open(t.Context(), t.TempDir()+"/x.db", sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e, err := latchkey.New(t.Context(), store, latchkey.Config{MasterKey: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Config().KeyPublishLead; got != defaultKeyPublishLead {
		t.Errorf("latchkey.Config's default KeyPublishLead is %s, the CLI says %s", got, defaultKeyPublishLead)
	}
}
