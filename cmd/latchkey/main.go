// Command latchkey runs the Latchkey authentication server and its
// maintenance tasks.
//
// Usage:
//
//	latchkey serve [flags]     run the HTTP server
//	latchkey migrate [flags]   apply database migrations
//	latchkey help [command]    show help
//
// Every setting is a flag or a LATCHKEY_* environment variable; a flag wins.
// Run "latchkey <command> --help" for the flags of a command.
//
// The command is a thin layer over package latchkey and its stores: it reads
// configuration, opens the store, builds the engine and serves it. All the
// work happens in run, which takes its arguments, environment and streams as
// parameters so that tests drive it in-process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
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

// cli is what a command needs from the process: its environment and streams.
// Commands never touch os.Stdout, os.Stderr or os.Getenv directly, so that
// tests can run them in-process.
type cli struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// command is one subcommand: its flags and what it does.
type command struct {
	name    string
	summary string
	// help is printed after the usage line and before the flags; it
	// describes what the command does.
	help    string
	options []option
	// run executes the command with the parsed flags. It returns a
	// *usageError for bad configuration values (exit 2) and any other error
	// for a runtime failure (exit 1).
	run func(ctx context.Context, c *cli, s *settings) error
}

func commands() []*command {
	return []*command{serveCommand(), migrateCommand()}
}

func findCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// usageError is a bad flag or configuration value. It exits with status 2;
// every other error exits with 1.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// run executes the command line args (without the program name) and returns
// the process exit code. Errors are reported as one line on stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		printTopUsage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if name == "help" && len(rest) > 0 {
			cmd := findCommand(rest[0])
			if cmd == nil {
				fmt.Fprintf(stderr, "latchkey help: unknown command %q (run 'latchkey help')\n", rest[0])
				return exitUsage
			}
			printCommandUsage(stdout, cmd)
			return exitOK
		}
		printTopUsage(stdout)
		return exitOK
	}
	cmd := findCommand(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "latchkey: unknown command %q (run 'latchkey help')\n", name)
		return exitUsage
	}
	s, err := parseFlags(cmd, rest, getenv)
	if errors.Is(err, flag.ErrHelp) {
		printCommandUsage(stdout, cmd)
		return exitOK
	}
	if err == nil {
		err = cmd.run(ctx, c, s)
	}
	if err == nil {
		return exitOK
	}
	// One line, whatever a wrapped error contains, so that logs and scripts
	// see one record per failure.
	msg := strings.Join(strings.Fields(err.Error()), " ")
	fmt.Fprintf(stderr, "latchkey %s: %s\n", cmd.name, msg)
	if _, ok := errors.AsType[*usageError](err); ok {
		return exitUsage
	}
	return exitFailure
}

func printTopUsage(w io.Writer) {
	fmt.Fprint(w, `Latchkey is an authentication service built around rotating refresh tokens.

Usage:
  latchkey <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-9s %s\n", "help", "show help for a command (latchkey help serve)")
	fmt.Fprint(w, `
Run 'latchkey <command> --help' for the flags of a command and the
LATCHKEY_* environment variables they go with; a flag wins over its variable.

Exit status: 0 success, 1 runtime failure, 2 bad usage or configuration value.
`)
}
