package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/latchkey-dev/latchkey"
)

func cleanupCommand() *command {
	return &command{
		name:    "cleanup",
		summary: "delete ended sessions and old security events",
		help: `Delete the sessions whose absolute deadline has passed and the security
events older than 90 days, then print one line:

    deleted N sessions and M security events

Revoked and expired sessions are kept until their absolute deadline, so
that a refresh token reused after a logout is still recognised as reuse.
Rows are deleted in batches of 1000, each its own short statement, so
cleanup can run while servers do; run it daily (cron, a systemd timer).
When standard error is a terminal, a progress line is shown there.

The master key comes from --master-key-file, LATCHKEY_MASTER_KEY or the key
file 'latchkey serve' created for the database; cleanup never creates a key
file.`,
		options: []option{databaseOption, masterKeyOption},
		run:     runCleanup,
	}
}

func runCleanup(ctx context.Context, m *Main, s *settings) error {
	e, err := openEngine(ctx, m, s, engineOptions{})
	if err != nil {
		return err
	}
	var progress func(latchkey.CleanupProgress)
	shown := 0 // width of the progress line on the terminal
	if isTerminal(m.Stderr) {
		progress = func(p latchkey.CleanupProgress) {
			line := "cleanup: " + cleanupSummary(p) + " so far"
			// Rewrite the line in place; pad over a longer previous one.
			fmt.Fprintf(m.Stderr, "\r%-*s", shown, line)
			shown = max(shown, len(line))
		}
	}
	p, err := e.Cleanup(ctx, progress)
	if shown > 0 {
		fmt.Fprintf(m.Stderr, "\r%s\r", strings.Repeat(" ", shown))
	}
	if err != nil {
		return fmt.Errorf("%w (%s before it failed)", err, cleanupSummary(p))
	}
	fmt.Fprintln(m.Stdout, cleanupSummary(p))
	return nil
}

// cleanupSummary is the line cleanup prints. Its form is fixed (plurals
// included) so that scripts can read the numbers.
func cleanupSummary(p latchkey.CleanupProgress) string {
	return fmt.Sprintf("deleted %d sessions and %d security events", p.SessionsDeleted, p.EventsDeleted)
}

// isTerminal reports whether w is a terminal, for output meant for people
// only (progress, prompts).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
