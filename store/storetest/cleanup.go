package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

var cleanupTests = []test{
	{"DeleteSessionsBefore", testDeleteSessionsBefore},
	{"DeleteEventsBefore", testDeleteEventsBefore},
}

// testDeleteSessionsBefore deletes sessions whose absolute deadline is
// strictly before the cut-off, at most limit at a time, whatever their
// state; a deadline at the cut-off stays.
func testDeleteSessionsBefore(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	u := addUser(t, s)
	cut := base
	deadline := func(d time.Time) func(*latchkey.Session) {
		return func(x *latchkey.Session) { x.AbsoluteDeadline, x.IdleDeadline = d, d.Add(-time.Hour) }
	}
	old := []*latchkey.Session{
		addSession(t, s, u.ID, deadline(cut.Add(-day))),
		addSession(t, s, u.ID, deadline(cut.Add(-time.Hour)), revoked),
		addSession(t, s, u.ID, deadline(cut.Add(-time.Microsecond))),
	}
	kept := []*latchkey.Session{
		addSession(t, s, u.ID, deadline(cut)),
		addSession(t, s, u.ID, deadline(cut.Add(time.Microsecond))),
		addSession(t, s, u.ID, deadline(cut.Add(day))),
	}
	for _, step := range []struct{ limit, want int }{{2, 2}, {2, 1}, {2, 0}} {
		n, err := s.DeleteSessionsBefore(ctx, cut, step.limit)
		if err != nil || n != step.want {
			t.Errorf("DeleteSessionsBefore(limit %d) = %d, %v; want %d, nil", step.limit, n, err, step.want)
		}
	}
	for _, x := range old {
		if _, err := s.SessionByID(ctx, x.ID); !errors.Is(err, latchkey.ErrNotFound) {
			t.Errorf("SessionByID(deleted, deadline %v) error = %v, want ErrNotFound", x.AbsoluteDeadline, err)
		}
	}
	checkUnchanged(t, s, kept...)
	if _, err := s.UserByID(ctx, u.ID); err != nil {
		t.Errorf("UserByID after DeleteSessionsBefore: %v", err)
	}
}

// testDeleteEventsBefore deletes events strictly older than the cut-off, at
// most limit at a time.
func testDeleteEventsBefore(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	cut := base
	ev := func(at time.Time) *latchkey.Event { return &latchkey.Event{At: at, Kind: latchkey.EventSignIn} }
	es := appendEvents(t, s,
		ev(cut.Add(-3*day)), ev(cut.Add(-time.Hour)), ev(cut.Add(-time.Microsecond)),
		ev(cut), ev(cut.Add(time.Microsecond)), ev(cut.Add(day)),
	)
	for _, step := range []struct{ limit, want int }{{2, 2}, {5, 1}, {5, 0}} {
		n, err := s.DeleteEventsBefore(ctx, cut, step.limit)
		if err != nil || n != step.want {
			t.Errorf("DeleteEventsBefore(limit %d) = %d, %v; want %d, nil", step.limit, n, err, step.want)
		}
	}
	got := listEvents(t, s, latchkey.EventFilter{})
	if want := []int64{es[5].ID, es[4].ID, es[3].ID}; !slices.Equal(eventIDs(got), want) {
		t.Errorf("events left: ids %v, want %v", eventIDs(got), want)
	}
}
