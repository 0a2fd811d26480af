package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// option is one flag of a command, with the environment variable that sets
// it when the flag is absent. The same table defines the flag, resolves its
// value and prints the help, so the help cannot drift from the code.
type option struct {
	name  string // flag name, without dashes
	arg   string // value placeholder in the help; "" for a boolean flag
	env   string // LATCHKEY_* variable, or "" for none
	def   string // default value, as it would be written on the command line
	usage string // help text; lines are indented as they are
	// secretEnv, for an option whose flag names a file holding a secret, is
	// the variable that holds the secret itself (--master-key-file and
	// LATCHKEY_MASTER_KEY): a file keeps the secret out of the environment
	// of every child process, a variable suits container platforms. See
	// settings.secret.
	secretEnv string
}

// settings are a command's parsed flags together with the environment: a
// flag given on the command line wins over its variable, which wins over
// the default.
type settings struct {
	cmd    string
	fs     *flag.FlagSet
	set    map[string]bool
	opts   map[string]option
	getenv func(string) string
	// args are the positional arguments (command.args).
	args []string
}

// parseFlags parses args with one FlagSet for cmd. It returns flag.ErrHelp
// for -h/--help and a *usageError for anything else that is wrong.
func parseFlags(cmd *command, args []string, getenv func(string) string) (*settings, error) {
	fs := flag.NewFlagSet("latchkey "+cmd.name, flag.ContinueOnError)
	// The flag package would print its own error and the whole usage; we
	// print one line instead (and the usage only when asked for).
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	s := &settings{cmd: cmd.name, fs: fs, set: map[string]bool{}, opts: map[string]option{}, getenv: getenv}
	for _, o := range cmd.options {
		s.opts[o.name] = o
		if o.arg == "" {
			fs.Bool(o.name, o.def == "true", o.usage)
		} else {
			fs.String(o.name, o.def, o.usage)
		}
	}
	// The flag package stops at the first positional argument; parse again
	// after each one, so that "keys revoke ID --database-url x" works as
	// well as "keys revoke --database-url x ID".
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if err == flag.ErrHelp {
				return nil, err
			}
			return nil, usagef("%v (run 'latchkey %s --help')", err, cmd.name)
		}
		if fs.NArg() == 0 {
			break
		}
		if n := len(rest) - fs.NArg(); n > 0 && rest[n-1] == "--" {
			// "--" ends the flags: the rest is positional, dashes or not.
			s.args = append(s.args, fs.Args()...)
			break
		}
		s.args = append(s.args, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	switch {
	case cmd.args == "" && len(s.args) > 0:
		return nil, usagef("unexpected argument %q (run 'latchkey %s --help')", s.args[0], cmd.name)
	case cmd.args != "" && len(s.args) == 0:
		return nil, usagef("missing %s (run 'latchkey %s --help')", cmd.args, cmd.name)
	case cmd.args != "" && len(s.args) > 1:
		return nil, usagef("unexpected argument %q after %s (run 'latchkey %s --help')", s.args[1], cmd.args, cmd.name)
	}
	fs.Visit(func(f *flag.Flag) { s.set[f.Name] = true })
	return s, nil
}

// lookup returns the value of option name and where it came from ("--name"
// or the variable's name), for error messages.
func (s *settings) lookup(name string) (value, source string) {
	o, ok := s.opts[name]
	if !ok {
		panic("latchkey: undefined option " + name) // a programming error
	}
	if s.set[name] {
		return s.fs.Lookup(name).Value.String(), "--" + name
	}
	if o.env != "" {
		// An empty variable counts as unset, as in most shells' ${VAR:-x}.
		if v := s.getenv(o.env); v != "" {
			return v, o.env
		}
	}
	return o.def, "--" + name
}

func (s *settings) string(name string) string {
	v, _ := s.lookup(name)
	return v
}

func (s *settings) bool(name string) (bool, error) {
	v, src := s.lookup(name)
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, usagef("invalid %s %q: want true or false", src, v)
	}
	return b, nil
}

// positiveDuration parses a duration that must be greater than zero.
func (s *settings) positiveDuration(name string) (time.Duration, error) {
	v, src := s.lookup(name)
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, usagef("invalid %s %q: not a duration (write it like 15m, 168h or 90s)", src, v)
	}
	if d <= 0 {
		return 0, usagef("invalid %s %q: must be positive", src, v)
	}
	return d, nil
}

// database is where the store lives, parsed from --database-url.
type database struct {
	// postgres is set for postgres:// and postgresql:// URLs, and url is
	// then the URL.
	postgres bool
	url      string
	// path is the SQLite file.
	path string
}

// name is how messages refer to the database: the SQLite path, or the
// PostgreSQL URL without its password.
func (d database) name() string {
	if d.postgres {
		return redactURL(d.url)
	}
	return d.path
}

// sqliteExts are the file extensions that make a bare path a SQLite
// database.
var sqliteExts = []string{".db", ".sqlite", ".sqlite3"}

// parseDatabaseURL accepts sqlite:PATH, sqlite://PATH (so sqlite:///abs.db
// is absolute and sqlite://rel.db relative, as in dbmate and golang-migrate),
// the same with sqlite3, a bare path ending in .db, .sqlite or .sqlite3, and
// postgres:// or postgresql:// URLs. The value is never repeated in full in an
// error, since a PostgreSQL URL may carry a password.
func parseDatabaseURL(v, src string) (database, error) {
	lower := strings.ToLower(v)
	for _, p := range []string{"postgres://", "postgresql://"} {
		if strings.HasPrefix(lower, p) {
			return database{postgres: true, url: v}, nil
		}
	}
	path, ok := "", false
	for _, p := range []string{"sqlite://", "sqlite3://", "sqlite:", "sqlite3:"} {
		if strings.HasPrefix(lower, p) {
			path, ok = v[len(p):], true
			break
		}
	}
	if !ok && !strings.Contains(v, "://") {
		for _, ext := range sqliteExts {
			if strings.EqualFold(filepath.Ext(v), ext) {
				path, ok = v, true
			}
		}
	}
	if !ok {
		return database{}, usagef("invalid %s %q: want sqlite:PATH, sqlite://PATH, a path ending in .db, or postgres://…", src, redactURL(v))
	}
	if path == "" {
		return database{}, usagef("invalid %s %q: the SQLite file path is empty", src, v)
	}
	if strings.Contains(path, "?") {
		// Latchkey sets the SQLite pragmas itself (see sqlite.DSN); a query
		// string would silently become part of the file name.
		return database{}, usagef("invalid %s %q: SQLite options in the URL are not supported", src, v)
	}
	return database{path: filepath.Clean(path)}, nil
}

// redactURL hides the password of a URL-like value.
func redactURL(v string) string {
	i := strings.Index(v, "://")
	if i < 0 {
		return v
	}
	if u, err := url.Parse(v); err == nil {
		// PostgreSQL also takes the password as a query parameter.
		q := u.Query()
		for _, k := range []string{"password", "sslpassword"} {
			if q.Has(k) {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
		return u.Redacted()
	}
	return v[:i+3] + "…"
}

// secret returns the secret of option name: the content of the file its
// flag names, else the value of its secretEnv variable; source says which,
// for messages (never the secret itself). ok is false when neither is set.
// A file that group or others can access is refused, as ssh refuses such
// private keys.
func (s *settings) secret(name, what string) (value []byte, source string, ok bool, err error) {
	o := s.opts[name]
	if s.set[name] {
		path := s.string(name)
		if path == "" {
			return nil, "", false, usagef("invalid --%s: empty path", name)
		}
		b, err := readSecretFile(path, what)
		if err != nil {
			return nil, "", false, err
		}
		return b, "--" + name + " " + path, true, nil
	}
	if v := s.getenv(o.secretEnv); o.secretEnv != "" && v != "" {
		return []byte(v), o.secretEnv, true, nil
	}
	return nil, "", false, nil
}

// databaseOption is --database-url, shared by every command that opens the
// store.
var databaseOption = option{
	name: "database-url", arg: "URL", env: "LATCHKEY_DATABASE_URL", def: "sqlite:latchkey.db",
	usage: `Database to use: sqlite:PATH, sqlite://PATH (sqlite:///abs/path.db for an
absolute path) or a bare PATH ending in .db, .sqlite or .sqlite3. A relative
PATH is relative to the working directory. serve and migrate create a
missing file; the other commands need it to exist. Or a PostgreSQL URL
(postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=...), which many instances
may share; it needs the master key (no key file is made for it).`,
}

// masterKeyOption is --master-key-file, shared by every command that opens
// the engine.
var masterKeyOption = option{
	name: "master-key-file", arg: "PATH", secretEnv: "LATCHKEY_MASTER_KEY",
	usage: `File holding the base64 master key (mode 0600 or stricter). Without it,
LATCHKEY_MASTER_KEY holds the key itself; without either, the key file
'latchkey serve' keeps for the SQLite database in its configuration
directory is used (only serve creates it).`,
}

// accessTTLOption is --access-ttl, shared by serve and keys list (which
// needs it to tell which retired signing keys the JWKS still publishes).
var accessTTLOption = option{name: "access-ttl", arg: "DURATION", env: "LATCHKEY_ACCESS_TTL", def: "15m",
	usage: "Lifetime of access tokens."}

// usageLine is the synopsis of c.
func usageLine(c *command) string {
	switch {
	case c.subcommands != nil:
		return fmt.Sprintf("latchkey %s <command> [flags]", c.name)
	case c.args != "":
		return fmt.Sprintf("latchkey %s [flags] %s", c.name, c.args)
	default:
		return fmt.Sprintf("latchkey %s [flags]", c.name)
	}
}

func printCommandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", usageLine(c), strings.TrimSpace(c.help))
	if c.subcommands != nil {
		fmt.Fprint(w, "\nCommands:\n")
		for _, sub := range c.subcommands {
			fmt.Fprintf(w, "  %-14s %s\n", sub.name, sub.summary)
		}
		fmt.Fprintf(w, "\nRun 'latchkey %s <command> --help' for the flags of a command.\n", c.name)
		return
	}
	fmt.Fprint(w, "\nFlags (a flag wins over its environment variable):\n")
	for _, o := range c.options {
		if o.arg == "" {
			fmt.Fprintf(w, "  --%s\n", o.name)
		} else {
			fmt.Fprintf(w, "  --%s %s\n", o.name, o.arg)
		}
		for line := range strings.SplitSeq(o.usage, "\n") {
			fmt.Fprintf(w, "        %s\n", line)
		}
		var meta []string
		if o.env != "" {
			meta = append(meta, "variable "+o.env)
		}
		if o.secretEnv != "" {
			meta = append(meta, "variable "+o.secretEnv+" holds the value itself")
		}
		if o.def != "" {
			meta = append(meta, "default "+o.def)
		}
		if len(meta) > 0 {
			fmt.Fprintf(w, "        (%s)\n", strings.Join(meta, ", "))
		}
	}
	fmt.Fprint(w, "  -h, --help\n        Show this help.\n")
}
