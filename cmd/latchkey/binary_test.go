package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/store/sqlite"
)

// binaryDeadline bounds each process the binary test starts: a hung process
// is killed and the test fails instead of hanging.
const binaryDeadline = 2 * time.Minute

// buildBinary builds the command into a temporary directory and returns the
// executable's path.
func buildBinary(t *testing.T) string {
	t.Helper()
	// go test puts $GOROOT/bin first in PATH; runtime.GOROOT is the fallback
	// for a test binary run by hand.
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "latchkey")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	// The test runs in the package directory, so "." is cmd/latchkey.
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// binaryEnv is the test process's environment without LATCHKEY_* variables,
// so that a developer's settings cannot leak into the processes started.
func binaryEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "LATCHKEY_") })
}

// runBinary runs the binary to completion with stdin and returns its exit
// code and output.
func runBinary(t *testing.T, bin, dir, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), binaryDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env, cmd.Stdin = dir, binaryEnv(), strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	}
	if err != nil {
		t.Fatalf("latchkey %s: %v", strings.Join(args, " "), err)
	}
	return 0, out.String(), errb.String()
}

// TestBinary drives the real command: serve in one process, user create and
// keys rotate in others on the same database, and the test process signing
// in through the engine and checking the token against the server's JWKS.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Skip("stops the server with SIGTERM")
	}
	bin := buildBinary(t)
	// The same configuration directory for the processes and for this test,
	// so that keyFilePath finds the key file serve creates.
	conf := isolate(t)
	work := t.TempDir()
	db := filepath.Join(work, "lk.db")

	code, stdout, stderr := runBinary(t, bin, work, "", "version")
	if code != 0 || !regexp.MustCompile(`^latchkey \S+ go\d+\.\d+\S*\n$`).MatchString(stdout) {
		t.Errorf("latchkey version: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// serve, on a free port; the test reads the address it prints.
	srv := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--database-url", "sqlite:"+db)
	srv.Dir, srv.Env = work, binaryEnv()
	pipe, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	srvErr := &syncBuffer{}
	srv.Stderr = srvErr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	kill := time.AfterFunc(binaryDeadline, func() { srv.Process.Kill() })
	defer kill.Stop()
	br := bufio.NewReader(pipe)
	first, _ := br.ReadString('\n')
	srvOut := &syncBuffer{}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		br.WriteTo(srvOut)
	}()
	exited := false
	wait := func() error {
		<-copied // Wait closes the pipe; read it all first
		exited = true
		return srv.Wait()
	}
	t.Cleanup(func() {
		if !exited {
			srv.Process.Kill()
			wait()
		}
	})
	m := regexp.MustCompile(`^latchkey listening on (http://127\.0\.0\.1:[1-9]\d*)\n$`).FindStringSubmatch(first)
	if m == nil {
		srv.Process.Kill()
		wait()
		t.Fatalf("first line of stdout %q; stderr:\n%s", first, srvErr)
	}
	base := m[1]

	if res, body := get(t, base+"/health"); res.StatusCode != 200 {
		t.Fatalf("GET /health: %s %s", res.Status, body)
	}

	// user create, in another process, the password on stdin.
	const password = "plover-quartz-lantern-91"
	code, stdout, stderr = runBinary(t, bin, work, password+"\n", "user", "create", "--email", "a@example.com", "--database-url", "sqlite:"+db)
	um := regexp.MustCompile(`^created user ([0-9a-f-]{36}) a@example\.com\n$`).FindStringSubmatch(stdout)
	if code != 0 || um == nil {
		t.Fatalf("user create: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	userID := um[1]

	// Sign in through an engine in this process, on the same database and
	// the master key serve created.
	keyPath, err := keyFilePath(db)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(keyPath) != filepath.Join(conf, "latchkey") {
		t.Errorf("key file %s is not in %s", keyPath, conf)
	}
	masterKey, err := readKeyFile(keyPath)
	if err != nil {
		t.Fatalf("the key file serve made: %v", err)
	}
	store, err := sqlite.Open(t.Context(), db, sqlite.Options{SkipMigrations: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e, err := latchkey.New(t.Context(), store, latchkey.Config{MasterKey: masterKey})
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.Login(t.Context(), "a@example.com", password, latchkey.ModeMobile, latchkey.Device{})
	if err != nil {
		t.Fatalf("login with the password given to user create: %v", err)
	}
	if g.UserID.String() != userID {
		t.Errorf("signed in as %s, user create printed %s", g.UserID, userID)
	}

	// The running server's JWKS verifies the access token.
	jwks, lastJWKS := fetchJWKS(t, base), time.Now()
	if len(jwks.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(jwks.Keys))
	}
	verifyAccessToken(t, string(g.AccessToken), jwks, userID)

	// keys rotate in another process; the running server publishes the new
	// key. It rereads the keys on a JWKS request at most once a second, so
	// the first request after a second must show it; a few more are allowed
	// for a slow machine.
	code, stdout, stderr = runBinary(t, bin, work, "", "keys", "rotate", "--database-url", "sqlite:"+db)
	km := regexp.MustCompile(`^created signing key (sig_\S+) `).FindStringSubmatch(stdout)
	if code != 0 || km == nil {
		t.Fatalf("keys rotate: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	time.Sleep(time.Until(lastJWKS.Add(1100 * time.Millisecond)))
	var kids []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		kids = kids[:0]
		for _, k := range fetchJWKS(t, base).Keys {
			kids = append(kids, k.KeyID)
		}
		if len(kids) == 2 || time.Now().After(deadline) {
			break
		}
	}
	if !slices.Contains(kids, km[1]) || !slices.Contains(kids, jwks.Keys[0].KeyID) {
		t.Errorf("JWKS after keys rotate lists %v, want the old key %s and the new %s", kids, jwks.Keys[0].KeyID, km[1])
	}

	// SIGTERM: a graceful stop, exit status 0.
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v; stderr:\n%s", err, srvErr)
	}
	logs := srvErr.String()
	if !strings.Contains(logs, "latchkey: created master key "+keyPath) {
		t.Errorf("serve's stderr does not say where the key file is:\n%s", logs)
	}
	key64 := base64.StdEncoding.EncodeToString(masterKey)
	for _, out := range []string{logs, srvOut.String()} {
		if strings.Contains(out, password) || strings.Contains(out, key64) || strings.Contains(out, string(g.AccessToken)) {
			t.Errorf("serve printed a secret:\n%s", out)
		}
	}
}

func fetchJWKS(t *testing.T, base string) latchkey.JWKS {
	t.Helper()
	res, body := get(t, base+"/.well-known/jwks.json")
	var set latchkey.JWKS
	if res.StatusCode != 200 || json.Unmarshal(body, &set) != nil {
		t.Fatalf("GET /.well-known/jwks.json: %s %s", res.Status, body)
	}
	return set
}

// verifyAccessToken checks the JWT's EdDSA signature with the JWKS key its
// kid names (RFC 8037), and its type and subject: what a resource server
// does, with nothing but the standard library.
func verifyAccessToken(t *testing.T, token string, set latchkey.JWKS, sub string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d parts", len(parts))
	}
	var header struct{ Alg, Typ, Kid string }
	var claims struct{ Sub string }
	for i, v := range []any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, v) != nil {
			t.Fatalf("access token part %d is not base64url JSON: %v", i, err)
		}
	}
	if header.Alg != "EdDSA" || header.Typ != "at+jwt" {
		t.Errorf("header alg %q typ %q, want EdDSA at+jwt", header.Alg, header.Typ)
	}
	if claims.Sub != sub {
		t.Errorf("sub %q, want %q", claims.Sub, sub)
	}
	i := slices.IndexFunc(set.Keys, func(k latchkey.JWK) bool { return k.KeyID == header.Kid })
	if i < 0 {
		t.Fatalf("kid %q is not in the JWKS", header.Kid)
	}
	k := set.Keys[i]
	x, err := base64.RawURLEncoding.DecodeString(k.X)
	if k.KeyType != "OKP" || k.Curve != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
		t.Fatalf("JWK %+v is not an Ed25519 key", k)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !ed25519.Verify(ed25519.PublicKey(x), []byte(parts[0]+"."+parts[1]), sig) {
		t.Errorf("the access token's signature does not verify with JWKS key %s", k.KeyID)
	}
}
