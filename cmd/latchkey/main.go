// Command latchkey runs the Latchkey authentication server and its
// maintenance tasks.
//
// Usage:
//
//	latchkey serve [flags]                    run the HTTP server
//	latchkey migrate [flags]                  apply database migrations
//	latchkey user create [--admin] --email E  create a user; the password is read from standard input
//	latchkey keys list|rotate|revoke          list, add or withdraw signing, rotation and tag keys
//	latchkey cleanup [flags]                  delete ended sessions and old security events
//	latchkey version                          print the version
//	latchkey help [command]                   show help
//
// Every setting is a flag or a LATCHKEY_* environment variable; a flag wins.
// Run "latchkey <command> --help" for the flags of a command.
//
// The command is a thin layer over package latchkey, its stores and package
// httpapi: it reads configuration, opens the store, builds the engine and
// serves or administers it. All the work happens in Main, which takes its
// arguments, environment and streams as fields so that tests drive it
// in-process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default handling so that a
		// second Ctrl-C kills a shutdown that hangs.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // runtime failure: database, file system, network
	exitUsage   = 2 // bad command line or configuration value
)

// run executes the command line args (without the program name) and returns
// the process exit code. Errors are reported as one line on stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	m := &Main{Getenv: getenv, Stdin: stdin, Stdout: stdout, Stderr: stderr}
	err := m.ParseFlags(args)
	if err == nil {
		err = m.Run(ctx)
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	return m.report(err)
}

// Main is the latchkey program, in the shape of the Main type of
// benbjohnson/wtf's cmd/wtfd: ParseFlags picks the command and reads its
// configuration, Run executes it, Close releases what it opened (the store).
// Commands never touch os.Stdout, os.Stderr, os.Stdin or os.Getenv
// directly, so that tests run them in-process with their own streams.
type Main struct {
	// Getenv reads LATCHKEY_* variables (os.Getenv in the real command).
	Getenv func(string) string
	// Stdin is where user create reads a password. When it is a terminal
	// (*os.File), the password is read without echo.
	Stdin io.Reader
	// Stdout receives results: addresses, ids, tables, summaries.
	Stdout io.Writer
	// Stderr receives logs, prompts, progress and errors. Progress is shown
	// only when it is a terminal.
	Stderr io.Writer

	// name is the command line as far as it was understood ("latchkey keys
	// rotate"); errors are prefixed with it.
	name     string
	cmd      *command
	settings *settings
	closers  []func() error
}

// errUsageShown is returned by ParseFlags when the usage it printed on stderr
// already explains what is wrong (a command group given without a command):
// the exit status is 2 and nothing more is printed.
var errUsageShown = errors.New("usage shown")

// ParseFlags selects the command named by args (without the program name)
// and parses its flags. After printing help that was asked for it returns
// flag.ErrHelp; for a bad command line it returns a *usageError.
func (m *Main) ParseFlags(args []string) error {
	m.name = "latchkey"
	if len(args) == 0 {
		printTopUsage(m.Stderr)
		return errUsageShown
	}
	if slices.Contains([]string{"help", "-h", "-help", "--help"}, args[0]) {
		if args[0] != "help" || len(args) == 1 {
			printTopUsage(m.Stdout)
			return flag.ErrHelp
		}
		m.name = "latchkey help"
		cmd, rest, err := lookupCommand(args[1:])
		if err == nil && len(rest) > 0 {
			err = fmt.Errorf("unknown command %q", strings.Join(args[1:], " "))
		}
		if err != nil {
			return usagef("%v (run 'latchkey help')", err)
		}
		printCommandUsage(m.Stdout, cmd)
		return flag.ErrHelp
	}
	cmd, rest, err := lookupCommand(args)
	if err != nil {
		return usagef("%v (run 'latchkey help')", err)
	}
	m.name, m.cmd = "latchkey "+cmd.name, cmd
	if cmd.subcommands != nil {
		// A group ("latchkey keys") is not a command by itself: its help
		// lists what it holds.
		if len(rest) > 0 && isHelpFlag(rest[0]) {
			printCommandUsage(m.Stdout, cmd)
			return flag.ErrHelp
		}
		if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			return usagef("unknown command %q (run 'latchkey %s --help')", rest[0], cmd.name)
		}
		printCommandUsage(m.Stderr, cmd)
		return errUsageShown
	}
	m.settings, err = parseFlags(cmd, rest, m.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		printCommandUsage(m.Stdout, cmd)
	}
	return err
}

// Run executes the command ParseFlags selected. It returns a *usageError for
// a bad configuration value and any other error for a runtime failure.
func (m *Main) Run(ctx context.Context) error {
	if m.cmd == nil || m.cmd.run == nil {
		return errors.New("no command parsed")
	}
	return m.cmd.run(ctx, m, m.settings)
}

// Close releases what the command opened, newest first, and returns the
// first error. It is safe to call more than once.
func (m *Main) Close() error {
	var first error
	for i := len(m.closers) - 1; i >= 0; i-- {
		if err := m.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	m.closers = nil
	return first
}

// onClose registers fn to run at Close.
func (m *Main) onClose(fn func() error) { m.closers = append(m.closers, fn) }

// report prints err, if any, as one line on stderr and returns the exit
// status it stands for.
func (m *Main) report(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsageShown):
		return exitUsage
	}
	// One line, whatever a wrapped error contains, so that logs and scripts
	// see one record per failure.
	msg := strings.Join(strings.Fields(err.Error()), " ")
	fmt.Fprintf(m.Stderr, "%s: %s\n", m.name, msg)
	if _, ok := errors.AsType[*usageError](err); ok {
		return exitUsage
	}
	return exitFailure
}

// command is one subcommand, such as "serve" or "keys rotate", or a group of
// them, such as "keys".
type command struct {
	// name is the full name, as typed after "latchkey".
	name    string
	summary string
	// help is printed after the usage line and before the flags; it
	// describes what the command does.
	help string
	// args names the positional arguments in the usage line ("ID"); the
	// command takes exactly one when it is set and none otherwise.
	args    string
	options []option
	// subcommands, for a group, are its commands; a group has no run.
	subcommands []*command
	// run executes the command with the parsed flags. It returns a
	// *usageError for bad configuration values (exit 2) and any other error
	// for a runtime failure (exit 1).
	run func(ctx context.Context, m *Main, s *settings) error
}

func commands() []*command {
	return []*command{
		serveCommand(),
		migrateCommand(),
		{name: "user", summary: "manage users", help: `Manage user accounts.`,
			subcommands: []*command{userCreateCommand()}},
		{name: "keys", summary: "list, add or withdraw keys", help: `Manage the keys stored in the database, encrypted under the master key:
signing keys (Ed25519, sign access tokens; published in the JWKS),
rotation keys (HMAC, derive each session's chain of refresh-token secrets)
and tag keys (HMAC, authenticate refresh tokens before any storage call).`,
			subcommands: []*command{keysListCommand(), keysRotateCommand(), keysRevokeCommand()}},
		cleanupCommand(),
		versionCommand(),
	}
}

// leafCommands lists every runnable command, groups expanded, in help order.
func leafCommands() []*command {
	var out []*command
	for _, c := range commands() {
		if c.subcommands == nil {
			out = append(out, c)
		}
		out = append(out, c.subcommands...)
	}
	return out
}

// lookupCommand finds the command args start with, descending into a group
// when the next argument names one of its commands, and returns it with the
// arguments that follow.
func lookupCommand(args []string) (*command, []string, error) {
	cmds := commands()
	for _, c := range cmds {
		if c.name != args[0] {
			continue
		}
		rest := args[1:]
		if len(rest) > 0 {
			for _, sub := range c.subcommands {
				if sub.name == c.name+" "+rest[0] {
					return sub, rest[1:], nil
				}
			}
		}
		return c, rest, nil
	}
	return nil, nil, fmt.Errorf("unknown command %q", args[0])
}

func isHelpFlag(s string) bool {
	return s == "-h" || s == "-help" || s == "--help"
}

// usageError is a bad flag or configuration value. It exits with status 2;
// every other error exits with 1.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func printTopUsage(w io.Writer) {
	fmt.Fprint(w, `Latchkey is an authentication service built around rotating refresh tokens.

Usage:
  latchkey <command> [flags]

Commands:
`)
	leaves := leafCommands()
	width := len("help")
	for _, c := range leaves {
		width = max(width, len(c.name))
	}
	for _, c := range leaves {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-*s  %s\n", width, "help", "show help for a command (latchkey help keys rotate)")
	fmt.Fprint(w, `
Run 'latchkey <command> --help' for the flags of a command and the
LATCHKEY_* environment variables they go with; a flag wins over its variable.

Exit status: 0 success, 1 runtime failure, 2 bad usage or configuration value.
`)
}
