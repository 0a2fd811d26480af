package latchkey_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/enginetest"
	"github.com/latchkey-dev/latchkey/store/sqlite"
)

// encodings returns the forms a secret could take in a file or a log.
func encodings(b []byte) [][]byte {
	return [][]byte{
		b,
		[]byte(hex.EncodeToString(b)),
		[]byte(strings.ToUpper(hex.EncodeToString(b))),
		[]byte(base64.StdEncoding.EncodeToString(b)),
		[]byte(base64.RawStdEncoding.EncodeToString(b)),
		[]byte(base64.URLEncoding.EncodeToString(b)),
		[]byte(base64.RawURLEncoding.EncodeToString(b)),
	}
}

type secret struct {
	name  string
	value []byte
}

// findAny returns the names of the secrets found in haystack in any encoding.
func findAny(haystack []byte, secrets []secret) []string {
	var found []string
	for _, s := range secrets {
		for _, enc := range encodings(s.value) {
			if bytes.Contains(haystack, enc) {
				found = append(found, s.name)
				break
			}
		}
	}
	return found
}

func readDBFiles(t *testing.T, path string) []byte {
	t.Helper()
	var all []byte
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(path + suffix)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// TestNoSecretsAtRest runs a scripted session history and then scans the
// SQLite file, its WAL and shared-memory files (while open and after close),
// the logs and every error string for tokens, secrets of every generation,
// passwords, the master key and the decrypted keys. The email, session id and
// stored hash must be found, so that the scan is shown to work.
func TestNoSecretsAtRest(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "scan.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	master := make([]byte, latchkey.MasterKeySize)
	rand.Read(master)
	clock := enginetest.NewClock()
	e, err := latchkey.New(ctx, st, latchkey.Config{MasterKey: master, PasswordParams: enginetest.CheapPasswords,
		Now: clock.Now, Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	const email = "scan.me@example.com"
	const password = "first secret passphrase 77"
	const password2 = "second secret passphrase 88"
	const wrongPassword = "guessing wrongly 123456"
	var errs []error
	var tokens []latchkey.Token
	keep := func(g *latchkey.Grant, err error) *latchkey.Grant {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, g.AccessToken, g.RefreshToken)
		return g
	}
	d := enginetest.Browser
	u, err := e.Register(ctx, latchkey.NewUser{Email: email, Password: password, FullName: "Scan Me"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Login(ctx, email, wrongPassword, latchkey.ModeCookie, d)
	errs = append(errs, err)
	g := keep(e.Login(ctx, email, password, latchkey.ModeCookie, d))
	mobile := keep(e.Login(ctx, email, password, latchkey.ModeMobile, enginetest.Phone))
	cur := g
	for range 5 {
		cur = keep(e.Refresh(ctx, string(cur.RefreshToken), latchkey.ModeCookie, d))
	}
	prev := tokens[len(tokens)-3]                                 // the refresh token before the current one
	keep(e.Refresh(ctx, string(prev), latchkey.ModeCookie, d))    // grace answer
	clock.Advance(11 * time.Second)                               // past the grace window
	_, err = e.Refresh(ctx, string(prev), latchkey.ModeCookie, d) // reuse
	errs = append(errs, err)
	_, err = e.Refresh(ctx, string(cur.RefreshToken)+"x", latchkey.ModeCookie, d)
	errs = append(errs, err)
	m2 := keep(e.Refresh(ctx, string(mobile.RefreshToken), latchkey.ModeMobile, enginetest.Phone))
	errs = append(errs, e.ChangePassword(ctx, u.ID, m2.SessionID, wrongPassword, password2, d))
	if err := e.ChangePassword(ctx, u.ID, m2.SessionID, password, password2, d); err != nil {
		t.Fatal(err)
	}
	g3 := keep(e.Login(ctx, email, password2, latchkey.ModeCookie, d))
	if err := e.Logout(ctx, string(g3.RefreshToken), d); err != nil {
		t.Fatal(err)
	}
	keep(e.Login(ctx, email, password2, latchkey.ModeCookie, d))
	if _, err := e.LogoutAll(ctx, u.ID, d); err != nil {
		t.Fatal(err)
	}

	secrets := []secret{
		{"password", []byte(password)}, {"new password", []byte(password2)},
		{"wrong password", []byte(wrongPassword)}, {"master key", master},
	}
	for i, k := range latchkey.KeyMaterial(e) {
		secrets = append(secrets, secret{fmt.Sprintf("key material %d", i), k})
	}
	for i, tok := range tokens {
		secrets = append(secrets, secret{fmt.Sprintf("token %d", i), []byte(tok)})
		if strings.HasPrefix(string(tok), "lkr_") {
			for j, s := range latchkey.ChainSecrets(e, string(tok), 2) {
				secrets = append(secrets, secret{fmt.Sprintf("secret %d of token %d", j, i), s})
			}
		}
	}
	sess, err := st.SessionByID(ctx, g.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	controls := []secret{{"email", []byte(email)}, {"session id", g.SessionID[:]}, {"stored hash", sess.CurrentHash}}

	check := func(what string, data []byte, wantControls []secret) {
		t.Helper()
		if leaked := findAny(data, secrets); len(leaked) > 0 {
			t.Errorf("%s contains %v", what, leaked)
		}
		if found := findAny(data, wantControls); len(found) != len(wantControls) {
			t.Errorf("%s: positive controls found %v of %d; the scan is not seeing the data", what, found, len(wantControls))
		}
	}
	check("database files while open", readDBFiles(t, path), controls)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	check("database files after close", readDBFiles(t, path), controls)
	check("logs", logs.b.Bytes(), []secret{{"session id", []byte(g.SessionID.String())}})
	var errText strings.Builder
	for _, err := range errs {
		if err == nil {
			t.Fatal("a scripted failure did not fail")
		}
		errText.WriteString(err.Error() + "\n")
		errText.WriteString(fmt.Sprintf("%v %+v %#v\n", err, err, err))
	}
	check("error strings", []byte(errText.String()), nil)
	// Grants print redacted.
	out := fmt.Sprintf("%v %+v %s %q %x", g, *g, g.RefreshToken, g.RefreshToken, g.AccessToken)
	var lb bytes.Buffer
	slog.New(slog.NewTextHandler(&lb, nil)).Info("grant", "grant", g, "token", g.RefreshToken)
	check("formatted grant", []byte(out+lb.String()), nil)
}
