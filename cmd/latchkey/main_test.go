package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/store/sqlite"
)

// testKey and otherKey are valid master keys.
var (
	testKey  = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	otherKey = base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// runCLI runs the command line in-process and returns its exit code and
// output.
func runCLI(t *testing.T, ctx context.Context, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCLIStdin(t, ctx, env, "", args...)
}

// runCLIStdin is runCLI with stdin as standard input (not a terminal).
func runCLIStdin(t *testing.T, ctx context.Context, env map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(ctx, args, envMap(env), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// isolate points the user configuration directory and the working directory
// at fresh temporary directories, so that no test writes a key file or a
// database anywhere else, and returns the configuration directory.
func isolate(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home) // macOS: $HOME/Library/Application Support
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	t.Setenv("AppData", filepath.Join(home, "appdata")) // Windows
	t.Chdir(t.TempDir())
	dir, err := os.UserConfigDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// cancelled returns a context that is already done: a command that wrongly
// got past validation fails on it instead of serving forever.
func cancelled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}

func oneLine(t *testing.T, stderr string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr is not exactly one line:\n%s", stderr)
	}
}

func TestHelp(t *testing.T) {
	isolate(t)
	cases := [][]string{{"--help"}, {"-h"}, {"help"}}
	for _, c := range commands() {
		cases = append(cases, []string{"help", c.name}, []string{c.name, "--help"}, []string{c.name, "-h"})
		for _, sub := range c.subcommands {
			name := strings.Fields(sub.name)
			cases = append(cases, append([]string{"help"}, name...), append(name, "--help"), append(name, "-h"))
		}
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, cancelled(t), nil, args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr)
			}
			if !strings.Contains(stdout, "Usage:") {
				t.Errorf("no usage in:\n%s", stdout)
			}
		})
	}
	// --help wins over anything wrong that follows it, as in the flag
	// package.
	if code, _, stderr := runCLI(t, cancelled(t), nil, "keys", "revoke", "--help", "--bogus"); code != 0 {
		t.Errorf("keys revoke --help --bogus: exit %d, stderr %q", code, stderr)
	}
	// The top help lists every command; each command's help lists every
	// flag and variable the code reads.
	_, top, _ := runCLI(t, cancelled(t), nil, "help")
	for _, cmd := range leafCommands() {
		if !strings.Contains(top, "  "+cmd.name+" ") {
			t.Errorf("latchkey help does not list %q", cmd.name)
		}
		_, stdout, _ := runCLI(t, cancelled(t), nil, append(strings.Fields(cmd.name), "--help")...)
		if !strings.HasPrefix(stdout, "Usage: "+usageLine(cmd)+"\n") {
			t.Errorf("latchkey %s --help starts %q", cmd.name, strings.SplitN(stdout, "\n", 2)[0])
		}
		for _, o := range cmd.options {
			for _, want := range []string{"--" + o.name, o.env, o.secretEnv} {
				if !strings.Contains(stdout, want) {
					t.Errorf("latchkey %s --help does not mention %s", cmd.name, want)
				}
			}
		}
	}
}

// TestGroupWithoutCommand checks that "latchkey keys" alone shows what the
// group holds, on stderr, with exit status 2.
func TestGroupWithoutCommand(t *testing.T) {
	for _, args := range [][]string{{"keys"}, {"user"}, {"keys", "--database-url", "x.db"}} {
		code, stdout, stderr := runCLI(t, cancelled(t), nil, args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, "Usage: latchkey "+args[0]+" <command>") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and the group's usage on stderr", args, code, stdout, stderr)
		}
	}
}

func TestNoArguments(t *testing.T) {
	code, stdout, stderr := runCLI(t, cancelled(t), nil)
	if code != 2 || stdout != "" || !strings.Contains(stderr, "Usage:") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 2 and the usage on stderr", code, stdout, stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	isolate(t)
	badFile := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(badFile, []byte("too short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	emptyFile := filepath.Join(t.TempDir(), "empty.secret")
	if err := os.WriteFile(emptyFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
		// secret must not appear in the output.
		secret string
	}{
		{"unknown command", []string{"frobnicate"}, nil, `latchkey: unknown command "frobnicate"`, ""},
		{"help unknown command", []string{"help", "frobnicate"}, nil, `unknown command "frobnicate"`, ""},
		{"unknown flag", []string{"serve", "--bogus"}, nil, "latchkey serve: flag provided but not defined: -bogus", ""},
		{"flag of another command", []string{"migrate", "--grace", "5s"}, nil, "flag provided but not defined: -grace", ""},
		{"missing value", []string{"serve", "--grace"}, nil, "flag needs an argument: -grace", ""},
		{"positional argument", []string{"serve", "now"}, nil, `unexpected argument "now"`, ""},
		{"bad duration", []string{"serve", "--access-ttl", "banana"}, nil, `invalid --access-ttl "banana": not a duration`, ""},
		{"zero duration", []string{"serve", "--access-ttl", "0"}, nil, `invalid --access-ttl "0": must be positive`, ""},
		{"negative duration", []string{"serve", "--refresh-idle-ttl=-1h"}, nil, `invalid --refresh-idle-ttl "-1h": must be positive`, ""},
		{"bad session max age", nil, map[string]string{"LATCHKEY_SESSION_MAX_AGE": "30d"}, `invalid LATCHKEY_SESSION_MAX_AGE "30d"`, ""},
		{"grace too long", []string{"serve", "--grace", "61s"}, nil, `latchkey serve: invalid --grace "61s": must be between 0s and 60s`, ""},
		{"negative grace", []string{"serve", "--grace=-1s"}, nil, `invalid --grace "-1s": must be between 0s and 60s`, ""},
		{"grace from env", nil, map[string]string{"LATCHKEY_GRACE": "90s"}, `invalid LATCHKEY_GRACE "90s": must be between 0s and 60s`, ""},
		{"bad addr", []string{"serve", "--addr", "8080"}, nil, `invalid --addr "8080"`, ""},
		{"bad bool flag", []string{"serve", "--dev=maybe"}, nil, `invalid boolean value "maybe" for -dev`, ""},
		{"bad bool env", nil, map[string]string{"LATCHKEY_DEV": "maybe"}, `invalid LATCHKEY_DEV "maybe": want true or false`, ""},
		{"bad admin email", []string{"serve", "--admin-email", "root"}, nil, `invalid --admin-email "root": not an email address`, ""},
		{"bad redis url", nil, map[string]string{"LATCHKEY_REDIS_URL": "http://u:hunter2@h"}, "invalid LATCHKEY_REDIS_URL", "hunter2"},
		{"master key not base64", nil, map[string]string{"LATCHKEY_MASTER_KEY": "s3cret!not*base64"}, "invalid LATCHKEY_MASTER_KEY: not base64", "s3cret"},
		{"master key too short", nil, map[string]string{"LATCHKEY_MASTER_KEY": short}, "invalid LATCHKEY_MASTER_KEY: decodes to 16 bytes, not 32", short},
		{"master key file content", []string{"serve", "--master-key-file", badFile}, nil, "invalid master key file", "too short"},
		{"unknown database scheme", []string{"serve", "--database-url", "mysql://root:hunter2@db/x"}, nil, `invalid --database-url "mysql://root:xxxxx@db/x"`, "hunter2"},
		{"bare path without .db", []string{"migrate", "--database-url", "data/latchkey"}, nil, `invalid --database-url "data/latchkey"`, ""},
		{"empty sqlite path", []string{"migrate", "--database-url", "sqlite:"}, nil, "the SQLite file path is empty", ""},
		{"sqlite options", []string{"migrate", "--database-url", "sqlite:x.db?mode=ro"}, nil, "SQLite options in the URL are not supported", ""},
		{"bad trusted proxy", []string{"serve", "--trusted-proxies", "10.0.0.0/8,10.0.0.0/33"}, nil,
			`latchkey serve: invalid --trusted-proxies: "10.0.0.0/33" is not an IP address or CIDR network`, ""},
		{"trusted proxy host name", nil, map[string]string{"LATCHKEY_TRUSTED_PROXIES": "proxy.internal"},
			`invalid LATCHKEY_TRUSTED_PROXIES: "proxy.internal" is not an IP address`, ""},
		{"cors origin with path", []string{"serve", "--cors-origins", "https://app.example.com/app"}, nil,
			`invalid --cors-origins: "https://app.example.com/app" has more than scheme, host and port`, ""},
		{"cors origin with slash", []string{"serve", "--cors-origins", "https://app.example.com/"}, nil,
			"has more than scheme, host and port", ""},
		{"cors wildcard", nil, map[string]string{"LATCHKEY_CORS_ORIGINS": "*"}, `invalid LATCHKEY_CORS_ORIGINS: "*" is not allowed`, ""},
		{"cors without scheme", []string{"serve", "--cors-origins", "app.example.com"}, nil, `"app.example.com" is not an origin`, ""},
		{"cors other scheme", []string{"serve", "--cors-origins", "ftp://app.example.com"}, nil, "is not an http or https origin", ""},
		{"short introspection secret", nil, map[string]string{"LATCHKEY_INTROSPECTION_SECRET": "tiny-secret-x"},
			"invalid introspection secret from LATCHKEY_INTROSPECTION_SECRET: 13 characters, want at least 32", "tiny-secret-x"},
		{"empty introspection secret file", []string{"serve", "--introspection-secret-file", emptyFile}, nil,
			"invalid introspection secret from --introspection-secret-file " + emptyFile + ": 0 characters", ""},
		{"unknown group command", []string{"keys", "frobnicate"}, nil, `latchkey keys: unknown command "frobnicate" (run 'latchkey keys --help')`, ""},
		{"help unknown subcommand", []string{"help", "keys", "frobnicate"}, nil, `latchkey help: unknown command "keys frobnicate"`, ""},
		{"user create without email", []string{"user", "create"}, nil, "latchkey user create: --email is required", ""},
		{"user create bad email", []string{"user", "create", "--email", "root"}, nil, `invalid --email "root": not an email address`, ""},
		{"user create bad admin flag", []string{"user", "create", "--email", "a@example.com", "--admin=maybe"}, nil, `invalid boolean value "maybe" for -admin`, ""},
		{"user create password flag", []string{"user", "create", "--email", "a@example.com", "--password", "hunter2hunter2"}, nil,
			"flag provided but not defined: -password", ""},
		{"user create positional", []string{"user", "create", "--email", "a@example.com", "hunter2hunter2"}, nil,
			`unexpected argument "hunter2hunter2"`, ""},
		{"keys rotate bad purpose", []string{"keys", "rotate", "--purpose", "encryption"}, nil,
			`latchkey keys rotate: invalid --purpose "encryption": want signing, rotation or tag`, ""},
		{"keys revoke without id", []string{"keys", "revoke"}, nil, "latchkey keys revoke: missing ID", ""},
		{"keys revoke two ids", []string{"keys", "revoke", "sig_a", "sig_b"}, nil, `unexpected argument "sig_b" after ID`, ""},
		{"keys list bad access ttl", []string{"keys", "list"}, map[string]string{"LATCHKEY_ACCESS_TTL": "soon"}, `latchkey keys list: invalid LATCHKEY_ACCESS_TTL "soon"`, ""},
		{"keys list master key", []string{"keys", "list"}, map[string]string{"LATCHKEY_MASTER_KEY": short},
			"invalid LATCHKEY_MASTER_KEY: decodes to 16 bytes", short},
		{"cleanup argument", []string{"cleanup", "now"}, nil, `latchkey cleanup: unexpected argument "now"`, ""},
		{"cleanup unknown flag", []string{"cleanup", "--older-than", "1h"}, nil, "flag provided but not defined: -older-than", ""},
		{"version argument", []string{"version", "--short"}, nil, "latchkey version: flag provided but not defined: -short", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if args == nil {
				args = []string{"serve"}
			}
			code, stdout, stderr := runCLI(t, cancelled(t), tt.env, args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr: %s", code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			oneLine(t, stderr)
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.want)
			}
			if tt.secret != "" && strings.Contains(stderr, tt.secret) {
				t.Errorf("stderr %q repeats the secret %q", stderr, tt.secret)
			}
			if _, err := os.Stat("latchkey.db"); err == nil {
				t.Errorf("a bad command line created latchkey.db")
			}
		})
	}
}

func TestDatabaseURL(t *testing.T) {
	tests := []struct {
		in       string
		path     string
		postgres bool
	}{
		{"sqlite:latchkey.db", "latchkey.db", false},
		{"sqlite:/var/lib/latchkey/auth.db", "/var/lib/latchkey/auth.db", false},
		{"sqlite:///var/lib/latchkey/auth.db", "/var/lib/latchkey/auth.db", false},
		{"sqlite://data/auth.db", "data/auth.db", false},
		{"SQLite3:auth", "auth", false},
		{"data/auth.db", "data/auth.db", false},
		{"/tmp/a#b.sqlite3", "/tmp/a#b.sqlite3", false},
		{"postgres://u:p@h/db", "", true},
		{"postgresql://h/db?sslmode=disable", "", true},
	}
	for _, tt := range tests {
		got, err := parseDatabaseURL(tt.in, "--database-url")
		if err != nil {
			t.Errorf("parseDatabaseURL(%q): %v", tt.in, err)
			continue
		}
		if got.path != tt.path || got.postgres != tt.postgres {
			t.Errorf("parseDatabaseURL(%q) = %+v, want path %q postgres %v", tt.in, got, tt.path, tt.postgres)
		}
	}
}

// TestFlagWinsOverEnv checks the precedence rule on serve's configuration:
// flag, then variable, then default.
func TestFlagWinsOverEnv(t *testing.T) {
	isolate(t)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(keyFile, []byte(otherKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		grace     time.Duration
		dev       bool
		keySource string
	}{
		{"defaults", nil, nil, 10 * time.Second, false, ""},
		{"env", nil, map[string]string{"LATCHKEY_GRACE": "5s", "LATCHKEY_DEV": "true", "LATCHKEY_MASTER_KEY": testKey},
			5 * time.Second, true, "LATCHKEY_MASTER_KEY"},
		// The variables are bad here, but the flags win, so they are never
		// read.
		{"flag wins", []string{"--grace", "7s", "--dev=false", "--master-key-file", keyFile},
			map[string]string{"LATCHKEY_GRACE": "90s", "LATCHKEY_DEV": "maybe", "LATCHKEY_MASTER_KEY": "bad"},
			7 * time.Second, false, "--master-key-file " + keyFile},
		{"zero disables grace", []string{"--grace", "0"}, nil, latchkey.GraceDisabled, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseFlags(serveCommand(), tt.args, envMap(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := parseServeConfig(s)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.grace != tt.grace || cfg.dev != tt.dev || cfg.keySource != tt.keySource {
				t.Errorf("grace %v, dev %v, key from %q; want %v, %v, %q", cfg.grace, cfg.dev, cfg.keySource, tt.grace, tt.dev, tt.keySource)
			}
		})
	}

	// And end to end, on the database migrate opens.
	dir := t.TempDir()
	envDB, flagDB := filepath.Join(dir, "env.db"), filepath.Join(dir, "flag.db")
	env := map[string]string{"LATCHKEY_DATABASE_URL": "sqlite:" + envDB}
	if code, _, stderr := runCLI(t, t.Context(), env, "migrate", "--database-url", "sqlite://"+flagDB); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(envDB); err == nil {
		t.Errorf("migrate with --database-url opened LATCHKEY_DATABASE_URL")
	}
	if _, err := os.Stat(flagDB); err != nil {
		t.Errorf("migrate with --database-url did not open it: %v", err)
	}
	if code, stdout, stderr := runCLI(t, t.Context(), env, "migrate"); code != 0 || !strings.Contains(stdout, envDB) {
		t.Errorf("migrate with LATCHKEY_DATABASE_URL: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestMigrate(t *testing.T) {
	isolate(t)
	db := filepath.Join(t.TempDir(), "auth.db")
	code, stdout, stderr := runCLI(t, t.Context(), nil, "migrate", "--database-url", db)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if want := regexp.MustCompile(`^latchkey migrate: .*auth\.db is at schema version [1-9]\d* \(was 0\)\n$`); !want.MatchString(stdout) {
		t.Errorf("stdout %q does not match %s", stdout, want)
	}
	_, stdout, _ = runCLI(t, t.Context(), nil, "migrate", "--database-url", db)
	if !strings.HasSuffix(stdout, "(up to date)\n") {
		t.Errorf("second migrate: %q", stdout)
	}
	if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode: %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

func TestRuntimeErrors(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	// A database whose keys are sealed with testKey.
	keyed := filepath.Join(dir, "keyed.db")
	newEngineDB(t, keyed, testKey)
	keyedKeyFile, err := keyFilePath(keyed)
	if err != nil {
		t.Fatal(err)
	}
	emptyDB := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(emptyDB, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	looseKey := filepath.Join(dir, "loose.key")
	if err := os.WriteFile(looseKey, []byte(testKey), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		want   string
		secret string
	}{
		// Port 1 on loopback: nothing listens there.
		{"postgres unreachable", []string{"serve", "--database-url", "postgres://u:hunter2@127.0.0.1:1/latchkey"},
			map[string]string{"LATCHKEY_MASTER_KEY": testKey}, "latchkey serve: postgres: ", "hunter2"},
		{"postgres migrate", nil, map[string]string{"LATCHKEY_DATABASE_URL": "postgresql://127.0.0.1:1/latchkey"},
			"latchkey migrate: postgres: ", ""},
		{"missing key file", []string{"serve", "--master-key-file", filepath.Join(dir, "nope.key")}, nil,
			"no such file", ""},
		{"key file readable by others", []string{"serve", "--master-key-file", looseKey}, nil,
			"is accessible by group or others (mode 0644); restrict it with: chmod 600", testKey},
		{"wrong master key", []string{"serve", "--addr", "127.0.0.1:0", "--database-url", keyed},
			map[string]string{"LATCHKEY_MASTER_KEY": otherKey},
			"the master key from LATCHKEY_MASTER_KEY cannot decrypt the keys in " + keyed, otherKey},
		{"keyed database without a key", []string{"serve", "--addr", "127.0.0.1:0", "--database-url", keyed}, nil,
			"already holds keys sealed with one", ""},
		{"schema too old", []string{"serve", "--migrate=false", "--database-url", filepath.Join(dir, "fresh.db")}, nil,
			"is at schema version 0 but this build needs", ""},
		{"missing introspection secret file", []string{"serve", "--introspection-secret-file", filepath.Join(dir, "nope.secret")}, nil,
			"introspection secret file: open " + filepath.Join(dir, "nope.secret") + ": no such file", ""},
		{"introspection secret file readable by others", []string{"serve", "--introspection-secret-file", looseKey}, nil,
			"introspection secret file " + looseKey + " is accessible by group or others", testKey},
		// The administrative commands create nothing: not the database, not
		// its schema, not a master key file.
		{"user create on a missing database", []string{"user", "create", "--email", "a@example.com", "--database-url", filepath.Join(dir, "typo.db")},
			map[string]string{"LATCHKEY_MASTER_KEY": testKey},
			"latchkey user create: database " + filepath.Join(dir, "typo.db") + " does not exist", ""},
		{"keys list on an old schema", []string{"keys", "list", "--database-url", emptyDB},
			map[string]string{"LATCHKEY_MASTER_KEY": testKey},
			"is at schema version 0 but this build needs", ""},
		{"keys list without a key file", []string{"keys", "list", "--database-url", keyed}, nil,
			"no master key: --master-key-file and LATCHKEY_MASTER_KEY are not set and the key file for " + keyed + ", " + keyedKeyFile + ", does not exist", ""},
		{"cleanup with the wrong key", []string{"cleanup", "--database-url", keyed}, map[string]string{"LATCHKEY_MASTER_KEY": otherKey},
			"latchkey cleanup: the master key from LATCHKEY_MASTER_KEY cannot decrypt the keys in " + keyed, otherKey},
		{"keys rotate postgres", []string{"keys", "rotate", "--database-url", "postgres://u:hunter2@127.0.0.1:1/latchkey"},
			map[string]string{"LATCHKEY_MASTER_KEY": testKey}, "latchkey keys rotate: postgres: ", "hunter2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if args == nil {
				args = []string{"migrate"}
			}
			// A generous bound, not a sleep: these fail before listening,
			// and a bug that starts the server anyway ends here.
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			code, stdout, stderr := runCLI(t, ctx, tt.env, args...)
			if code != 1 {
				t.Errorf("exit %d, want 1; stdout %q", code, stdout)
			}
			oneLine(t, stderr)
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.want)
			}
			if tt.secret != "" && strings.Contains(stderr, tt.secret) {
				t.Errorf("stderr repeats a secret: %q", stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "typo.db")); err == nil {
		t.Errorf("user create made the database it was pointed at by mistake")
	}
	if _, err := os.Stat(keyedKeyFile); err == nil {
		t.Errorf("keys list created a master key file")
	}
}

// newEngineDB creates a SQLite database at path whose keys are sealed with
// the base64 master key.
func newEngineDB(t *testing.T, path, key string) {
	t.Helper()
	store, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	k, _ := base64.StdEncoding.DecodeString(key)
	if _, err := latchkey.New(t.Context(), store, latchkey.Config{MasterKey: k}); err != nil {
		t.Fatal(err)
	}
}

func TestKeyFile(t *testing.T) {
	conf := isolate(t)
	db := filepath.Join(t.TempDir(), "auth.db")
	store, err := sqlite.Open(t.Context(), db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	key, path, created, err := loadOrCreateKeyFile(t.Context(), store, db)
	if err != nil || !created {
		t.Fatalf("first call: created %v, err %v", created, err)
	}
	if dir := filepath.Join(conf, "latchkey"); filepath.Dir(path) != dir {
		t.Errorf("key file in %s, want %s", filepath.Dir(path), dir)
	}
	if !regexp.MustCompile(`^auth-[0-9a-f]{8}\.key$`).MatchString(filepath.Base(path)) {
		t.Errorf("key file name %s, want auth-<8 hex>.key", filepath.Base(path))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v (err %v), want 0600", fi.Mode().Perm(), err)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("key directory mode %v (err %v), want 0700", fi.Mode().Perm(), err)
	}
	if len(key) != latchkey.MasterKeySize {
		t.Errorf("key is %d bytes", len(key))
	}

	again, path2, created, err := loadOrCreateKeyFile(t.Context(), store, db)
	if err != nil || created || path2 != path || !bytes.Equal(again, key) {
		t.Errorf("second call: created %v, path %s, same key %v, err %v; want the first key reused",
			created, path2, bytes.Equal(again, key), err)
	}

	// Another database of the same name elsewhere gets its own key.
	other := filepath.Join(t.TempDir(), "auth.db")
	if p, _ := keyFilePath(other); p == path {
		t.Errorf("two databases named auth.db share the key file %s", p)
	}

	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := loadOrCreateKeyFile(t.Context(), store, db); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("group-readable key file: err %v, want a refusal", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the server goroutine to write while
// the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is `latchkey serve` running in-process.
type server struct {
	url string
	// stdout holds what serve printed after its first line, complete once
	// stop has returned.
	stdout *syncBuffer
	stderr *syncBuffer
	stop   func() int // cancels the context and returns the exit code
}

// startServe runs serve on a free port and returns once it has printed its
// address; the test reads that line from a pipe instead of sleeping.
func startServe(t *testing.T, env map[string]string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		code := run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), envMap(env), strings.NewReader(""), pw, stderr)
		pw.Close()
		done <- code
	}()
	first := make(chan string, 1)
	stdout := &syncBuffer{}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		br := bufio.NewReader(pr)
		line, _ := br.ReadString('\n')
		first <- line
		io.Copy(stdout, br) // the hint line, and anything later
	}()
	var once sync.Once
	code := -1
	stop := func() int {
		once.Do(func() { cancel(); code = <-done; <-copied })
		return code
	}
	t.Cleanup(func() { stop() }) // before the temporary directories go

	line := <-first
	m := regexp.MustCompile(`^latchkey listening on (http://127\.0\.0\.1:[1-9]\d*)\n$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("first line of stdout %q; exit %d; stderr:\n%s", line, stop(), stderr)
	}
	return &server{url: m[1], stdout: stdout, stderr: stderr, stop: stop}
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

func TestServe(t *testing.T) {
	conf := isolate(t)
	db := filepath.Join(t.TempDir(), "latchkey.db")
	srv := startServe(t, map[string]string{"LATCHKEY_DATABASE_URL": "sqlite:" + db})

	res, body := get(t, srv.url+"/health")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET /health: %s, Content-Type %q", res.Status, res.Header.Get("Content-Type"))
	}
	var health map[string]string
	if err := json.Unmarshal(body, &health); err != nil || len(health) != 1 || health["status"] != "ok" {
		t.Errorf("GET /health body %q (%v), want {\"status\":\"ok\"}", body, err)
	}

	kid := jwksKeyID(t, srv.url)

	if code := srv.stop(); code != 0 {
		t.Fatalf("exit %d after cancel; stderr:\n%s", code, srv.stderr)
	}
	// With no users yet, serve says how to make the first admin, on this
	// database.
	if got, want := srv.stdout.String(), "latchkey: no users yet; create the first admin with: latchkey user create --admin --email EMAIL --database-url sqlite:"+db+"\n"; got != want {
		t.Errorf("after the address serve printed %q, want %q", got, want)
	}

	// The key file was created in the configuration directory, said so on
	// stderr, and its content never appeared there.
	matches, _ := filepath.Glob(filepath.Join(conf, "latchkey", "latchkey-*.key"))
	if len(matches) != 1 {
		t.Fatalf("key files: %v, want one", matches)
	}
	key, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	stderr := srv.stderr.String()
	if !strings.Contains(stderr, "latchkey: created master key "+matches[0]) {
		t.Errorf("stderr does not say where the key is:\n%s", stderr)
	}
	if strings.Contains(stderr, strings.TrimSpace(string(key))) {
		t.Errorf("stderr contains the master key")
	}

	// A second start reuses the key file, so the stored keys open: same kid.
	srv = startServe(t, nil, "--database-url", db, "--dev")
	if got := jwksKeyID(t, srv.url); got != kid {
		t.Errorf("after restart the JWKS has kid %s, want %s", got, kid)
	}
	if code := srv.stop(); code != 0 {
		t.Fatalf("second start: exit %d; stderr:\n%s", code, srv.stderr)
	}
	if strings.Contains(srv.stderr.String(), "created master key") {
		t.Errorf("second start created another key:\n%s", srv.stderr)
	}
}

// jwksKeyID fetches the JWKS, checks it holds one Ed25519 key, and returns
// its kid.
func jwksKeyID(t *testing.T, base string) string {
	t.Helper()
	res, body := get(t, base+"/.well-known/jwks.json")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /.well-known/jwks.json: %s", res.Status)
	}
	if got, want := res.Header.Get("Cache-Control"), "public, max-age=300"; got != want {
		t.Errorf("Cache-Control %q, want %q", got, want)
	}
	var set latchkey.JWKS
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("JWKS %q: %v", body, err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1: %s", len(set.Keys), body)
	}
	k := set.Keys[0]
	x, err := base64.RawURLEncoding.DecodeString(k.X)
	if k.KeyType != "OKP" || k.Curve != "Ed25519" || k.Algorithm != "EdDSA" || k.Use != "sig" || k.KeyID == "" || err != nil || len(x) != 32 {
		t.Errorf("JWK %+v, want an Ed25519 signing key", k)
	}
	return k.KeyID
}

// TestRedactURL hides a database password wherever the URL carries it.
func TestRedactURL(t *testing.T) {
	for in, hidden := range map[string]string{
		"postgres://app:hunter2@db:5432/latchkey":                     "hunter2",
		"postgres://app@db/latchkey?password=hunter3&sslmode=require": "hunter3",
		"postgresql://db/latchkey?sslpassword=hunter4":                "hunter4",
	} {
		if got := redactURL(in); strings.Contains(got, hidden) || !strings.Contains(got, "db") {
			t.Errorf("redactURL(%q) = %q, want the password hidden and the host kept", in, got)
		}
	}
}
