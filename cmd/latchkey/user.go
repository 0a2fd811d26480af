package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/latchkey-dev/latchkey"
)

// maxPasswordInput bounds the line read from standard input: the policy
// allows 128 characters, at most 4 bytes each in UTF-8, so anything longer
// is not a password (a file piped in by mistake).
const maxPasswordInput = 4 << 10

func userCreateCommand() *command {
	return &command{
		name:    "user create",
		summary: "create a user; the password is read from standard input",
		help: `Create a user account, marked verified, on an existing database (one that
'latchkey serve' or 'latchkey migrate' created), and print its id and email.

The password is never a flag or an argument, which would leave it in the
shell history and the process list. When standard input is a terminal,
user create prompts for it twice without echo; otherwise it reads one line
from standard input (the line break is not part of the password):

    printf '%s\n' "$PASSWORD" | latchkey user create --admin --email you@example.com

The password policy of the API applies: 8 to 128 characters, not common or
easily guessed. A password the policy refuses, or a bad email, exits with
status 2; an email already registered exits with status 1.

The master key comes from --master-key-file, LATCHKEY_MASTER_KEY or the key
file 'latchkey serve' created for the database; user create never creates a
key file.`,
		options: []option{
			{name: "email", arg: "EMAIL", usage: "Email of the new user. Required."},
			{name: "name", arg: "NAME", usage: "Full name of the new user. Default empty."},
			{name: "admin", def: "false", usage: "Give the user the admin role (default role: user)."},
			databaseOption,
			masterKeyOption,
		},
		run: runUserCreate,
	}
}

func runUserCreate(ctx context.Context, m *Main, s *settings) error {
	email := s.string("email")
	if email == "" {
		return usagef("--email is required (run 'latchkey user create --help')")
	}
	// A first check before asking for the password, so that a typo does not
	// cost typing it twice; Register has the last word.
	if a, err := mail.ParseAddress(email); err != nil || a.Name != "" || a.Address != email {
		return usagef("invalid --email %q: not an email address", email)
	}
	admin, err := s.bool("admin")
	if err != nil {
		return err
	}
	role := latchkey.RoleUser
	if admin {
		role = latchkey.RoleAdmin
	}
	e, err := openEngine(ctx, m, s, engineOptions{})
	if err != nil {
		return err
	}
	password, err := readPassword(ctx, m)
	if err != nil {
		return err
	}
	u, err := e.Register(ctx, latchkey.NewUser{Email: email, Password: password, FullName: s.string("name"),
		Role: role, IsVerified: true})
	if ve, ok := errors.AsType[*latchkey.ValidationError](err); ok {
		return usagef("invalid %s: %s", ve.Field, ve.Reason)
	}
	if errors.Is(err, latchkey.ErrEmailTaken) {
		return fmt.Errorf("%s is already registered", email)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "created %s %s %s\n", u.Role, u.ID, u.Email)
	return nil
}

// readPassword reads the new password: from the terminal without echo,
// asked twice, when standard input is one, else as one line of standard
// input.
func readPassword(ctx context.Context, m *Main) (string, error) {
	if f, ok := m.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p, err := promptPassword(ctx, m, int(f.Fd()))
		if err != nil {
			return "", err
		}
		return p, nil
	}
	br := bufio.NewReader(io.LimitReader(m.Stdin, maxPasswordInput+1))
	line, err := br.ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	if !strings.HasSuffix(line, "\n") && len(line) > maxPasswordInput {
		return "", usagef("the first line of standard input is longer than %d bytes; want the password alone", maxPasswordInput)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", usagef("no password on standard input: pipe it in as one line, or run from a terminal to be prompted")
	}
	return line, nil
}

// promptPassword asks for the password twice on the terminal fd, without
// echo. The prompts go to stderr so that stdout carries only the result.
// Interrupting the prompt (ctx done) restores the terminal's echo before
// returning, which term.ReadPassword would do only once a line is entered.
func promptPassword(ctx context.Context, m *Main, fd int) (string, error) {
	state, err := term.GetState(fd)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	type result struct {
		p   []byte
		err error
	}
	read := func(prompt string) ([]byte, error) {
		fmt.Fprint(m.Stderr, prompt)
		ch := make(chan result, 1)
		go func() {
			p, err := term.ReadPassword(fd)
			ch <- result{p, err}
		}()
		select {
		case r := <-ch:
			fmt.Fprintln(m.Stderr)
			if r.err != nil {
				return nil, fmt.Errorf("read password: %w", r.err)
			}
			return r.p, nil
		case <-ctx.Done():
			term.Restore(fd, state)
			fmt.Fprintln(m.Stderr)
			return nil, errors.New("interrupted")
		}
	}
	first, err := read("Password for the new user: ")
	if err != nil {
		return "", err
	}
	if len(first) == 0 {
		return "", usagef("empty password")
	}
	again, err := read("Repeat the password: ")
	if err != nil {
		return "", err
	}
	if !bytes.Equal(first, again) {
		return "", usagef("the two passwords differ")
	}
	return string(first), nil
}
