package main

import (
	"encoding/base64"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/store/sqlite"
)

// strongPassword passes the password policy.
const strongPassword = "plover-quartz-lantern-91"

// openTestEngine opens an engine on the SQLite database at path, sealed
// with the base64 master key, with cheap password hashing and the clock now
// (nil: time.Now). The store is closed when the test ends.
func openTestEngine(t *testing.T, path, key string, now func() time.Time) *latchkey.Engine {
	t.Helper()
	store, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	k, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	e, err := latchkey.New(t.Context(), store, latchkey.Config{MasterKey: k, Now: now,
		PasswordParams: latchkey.PasswordParams{MemoryKiB: 8, Iterations: 1, Parallelism: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// keyedDB creates a database whose keys are sealed with testKey and returns
// its path and the environment that reaches it.
func keyedDB(t *testing.T) (string, map[string]string) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "auth.db")
	newEngineDB(t, db, testKey)
	return db, map[string]string{"LATCHKEY_DATABASE_URL": "sqlite:" + db, "LATCHKEY_MASTER_KEY": testKey}
}

func TestUserCreate(t *testing.T) {
	isolate(t)
	db, env := keyedDB(t)

	// A user, the password piped in with a Windows line ending.
	code, stdout, stderr := runCLIStdin(t, t.Context(), env, strongPassword+"\r\n", "user", "create", "--email", "Ada@Example.com", "--name", "Ada Lovelace")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	m := regexp.MustCompile(`^created user ([0-9a-f-]{36}) ada@example\.com\n$`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("stdout %q, want \"created user ID ada@example.com\"", stdout)
	}

	// An admin; flags may follow in any order.
	code, stdout, stderr = runCLIStdin(t, t.Context(), env, strongPassword+"-2\n", "user", "create", "--admin", "--email", "root@example.com")
	if code != 0 || !regexp.MustCompile(`^created admin [0-9a-f-]{36} root@example\.com\n$`).MatchString(stdout) {
		t.Fatalf("admin: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// Both can sign in with exactly the password given (without the line
	// break), and have the roles asked for.
	e := openTestEngine(t, db, testKey, nil)
	for _, tt := range []struct {
		email, password, name string
		role                  latchkey.Role
	}{
		{"ada@example.com", strongPassword, "Ada Lovelace", latchkey.RoleUser},
		{"root@example.com", strongPassword + "-2", "", latchkey.RoleAdmin},
	} {
		g, err := e.Login(t.Context(), tt.email, tt.password, latchkey.ModeMobile, latchkey.Device{})
		if err != nil {
			t.Fatalf("login %s: %v", tt.email, err)
		}
		if g.Role != tt.role || !g.User.IsVerified || g.User.FullName != tt.name {
			t.Errorf("%s: role %s, verified %v, name %q; want %s, verified, %q", tt.email, g.Role, g.User.IsVerified, g.User.FullName, tt.role, tt.name)
		}
		if tt.role == latchkey.RoleUser && g.UserID.String() != m[1] {
			t.Errorf("printed id %s, stored %s", m[1], g.UserID)
		}
	}

	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"weak password", "password1\n", []string{"--email", "b@example.com"}, 2,
			"latchkey user create: invalid password: is too common or easily guessed"},
		{"short password", "Xq7#\n", []string{"--email", "b@example.com"}, 2, "invalid password: must be 8 to 128 characters"},
		{"no password", "", []string{"--email", "b@example.com"}, 2, "no password on standard input"},
		{"empty line", "\nsecond line\n", []string{"--email", "b@example.com"}, 2, "no password on standard input"},
		{"not a password", strings.Repeat("x", maxPasswordInput+1), []string{"--email", "b@example.com"}, 2,
			"the first line of standard input is longer than 4096 bytes"},
		{"duplicate", strongPassword + "\n", []string{"--email", "ADA@example.com"}, 1,
			"latchkey user create: ADA@example.com is already registered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLIStdin(t, t.Context(), env, tt.stdin, append([]string{"user", "create"}, tt.args...)...)
			if code != tt.code || stdout != "" {
				t.Errorf("exit %d, stdout %q; want %d and nothing", code, stdout, tt.code)
			}
			oneLine(t, stderr)
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.want)
			}
			if p := strings.TrimSpace(tt.stdin); p != "" && strings.Contains(stderr, p) {
				t.Errorf("stderr repeats the password: %q", stderr)
			}
		})
	}
	if _, n, err := e.ListUsers(t.Context(), latchkey.UserQuery{Limit: 10}); err != nil || n != 2 {
		t.Errorf("%d users (err %v), want the 2 created", n, err)
	}
}
