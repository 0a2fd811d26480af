package main

import (
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

func TestCleanup(t *testing.T) {
	isolate(t)
	db, env := keyedDB(t)

	// 100 days ago someone registered and signed in: the session passed its
	// 30-day absolute deadline long ago, and both security events are past
	// the 90-day retention. A sign-in today is kept.
	past := time.Now().Add(-100 * 24 * time.Hour)
	old := openTestEngine(t, db, testKey, func() time.Time { return past })
	if _, err := old.Register(t.Context(), latchkey.NewUser{Email: "old@example.com", Password: strongPassword}); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Login(t.Context(), "old@example.com", strongPassword, latchkey.ModeMobile, latchkey.Device{}); err != nil {
		t.Fatal(err)
	}
	now := openTestEngine(t, db, testKey, nil)
	live, err := now.Login(t.Context(), "old@example.com", strongPassword, latchkey.ModeMobile, latchkey.Device{})
	if err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runCLI(t, t.Context(), env, "cleanup")
	// stderr is not a terminal here, so there is no progress line.
	if code != 0 || stderr != "" || stdout != "deleted 1 sessions and 2 security events\n" {
		t.Fatalf("cleanup: exit %d, stdout %q, stderr %q; want \"deleted 1 sessions and 2 security events\"", code, stdout, stderr)
	}
	if _, err := now.Store().SessionByID(t.Context(), live.SessionID); err != nil {
		t.Errorf("cleanup deleted a live session: %v", err)
	}
	code, stdout, _ = runCLI(t, t.Context(), env, "cleanup")
	if code != 0 || stdout != "deleted 0 sessions and 0 security events\n" {
		t.Errorf("second cleanup: exit %d, stdout %q", code, stdout)
	}
}
