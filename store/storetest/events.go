package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
)

var eventTests = []test{
	{"AppendEventRoundTrip", testAppendEventRoundTrip},
	{"ListEventsFilters", testListEventsFilters},
	{"ListEventsLimit", testListEventsLimit},
	{"ListEventsDefaultLimit", testListEventsDefaultLimit},
	{"ListEventsNone", testListEventsNone},
}

// testAppendEventRoundTrip appends events, with and without a user and a
// session (neither needs to exist: events have no foreign keys), and reads
// them back.
func testAppendEventRoundTrip(t *testing.T, s latchkey.Store) {
	u := addUser(t, s)
	x := addSession(t, s, u.ID)
	want := []*latchkey.Event{
		{At: base.Add(-time.Hour + time.Microsecond), UserID: u.ID, SessionID: x.ID, Kind: latchkey.EventSignIn,
			IP: "203.0.113.7", UserAgent: "Mozilla/5.0", Detail: "password"},
		{At: base.Add(-time.Minute), Kind: latchkey.EventSignInFailed, IP: "2001:db8::2", Detail: "unknown email"},
		{At: base, UserID: uuid.Must(uuid.NewV7()), SessionID: uuid.New(), Kind: latchkey.EventReuseDetected,
			Detail: "generation 3 presented at 5 — ünïcödé"},
	}
	seen := map[int64]bool{}
	for _, e := range want {
		e := *e
		if err := s.AppendEvent(t.Context(), &e); err != nil {
			t.Fatalf("AppendEvent(%s): %v", e.Kind, err)
		}
		if e.ID == 0 || seen[e.ID] {
			t.Errorf("AppendEvent(%s) set ID %d, want a new non-zero id", e.Kind, e.ID)
		}
		seen[e.ID] = true
	}
	got := listEvents(t, s, latchkey.EventFilter{})
	if len(got) != len(want) {
		t.Fatalf("ListEvents: got %d events, want %d", len(got), len(want))
	}
	for i, g := range got {
		checkEvent(t, fmt.Sprintf("event %d (newest first)", i), g, want[len(want)-1-i])
		if !seen[g.ID] {
			t.Errorf("event %d: ID %d was not set by AppendEvent", i, g.ID)
		}
	}
}

// appendEvents appends es in order (their times increase) and returns them
// with their ids set.
func appendEvents(t *testing.T, s latchkey.Store, es ...*latchkey.Event) []*latchkey.Event {
	t.Helper()
	for _, e := range es {
		if err := s.AppendEvent(t.Context(), e); err != nil {
			t.Fatalf("AppendEvent(%s): %v", e.Kind, err)
		}
	}
	return es
}

// testListEventsFilters filters by user, session, kind and combinations,
// newest first.
func testListEventsFilters(t *testing.T, s latchkey.Store) {
	u1, u2 := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	s1, s2, s3 := uuid.New(), uuid.New(), uuid.New()
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	es := appendEvents(t, s,
		&latchkey.Event{At: at(0), UserID: u1, SessionID: s1, Kind: latchkey.EventSignIn},
		&latchkey.Event{At: at(1), UserID: u2, SessionID: s3, Kind: latchkey.EventSignIn},
		&latchkey.Event{At: at(2), UserID: u1, Kind: latchkey.EventSignInFailed},
		&latchkey.Event{At: at(3), UserID: u1, SessionID: s2, Kind: latchkey.EventSignIn},
		&latchkey.Event{At: at(4), UserID: u1, SessionID: s1, Kind: latchkey.EventLogout},
		&latchkey.Event{At: at(5), Kind: latchkey.EventSignInFailed},
		&latchkey.Event{At: at(6), UserID: u2, SessionID: s3, Kind: latchkey.EventGraceAnswer},
	)
	ids := func(is ...int) []int64 {
		out := make([]int64, len(is))
		for i, j := range is {
			out[i] = es[j].ID
		}
		return out
	}
	cases := []struct {
		name string
		f    latchkey.EventFilter
		want []int64
	}{
		{"All", latchkey.EventFilter{}, ids(6, 5, 4, 3, 2, 1, 0)},
		{"User", latchkey.EventFilter{UserID: u1}, ids(4, 3, 2, 0)},
		{"OtherUser", latchkey.EventFilter{UserID: u2}, ids(6, 1)},
		{"Session", latchkey.EventFilter{SessionID: s1}, ids(4, 0)},
		{"Kind", latchkey.EventFilter{Kind: latchkey.EventSignIn}, ids(3, 1, 0)},
		{"UserAndKind", latchkey.EventFilter{UserID: u1, Kind: latchkey.EventSignInFailed}, ids(2)},
		{"UserAndSession", latchkey.EventFilter{UserID: u1, SessionID: s2}, ids(3)},
		{"SessionAndKind", latchkey.EventFilter{SessionID: s1, Kind: latchkey.EventLogout}, ids(4)},
		{"UserAndOtherUsersSession", latchkey.EventFilter{UserID: u1, SessionID: s3}, nil},
		{"UnknownKind", latchkey.EventFilter{Kind: latchkey.EventKeyCreated}, nil},
		{"UserLimit", latchkey.EventFilter{UserID: u1, Limit: 3}, ids(4, 3, 2)},
	}
	for _, c := range cases {
		got := listEvents(t, s, c.f)
		if !slices.Equal(eventIDs(got), c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("ListEvents(%s) ids = %v, want %v", c.name, eventIDs(got), c.want)
		}
		for _, g := range got {
			if i := slices.IndexFunc(es, func(e *latchkey.Event) bool { return e.ID == g.ID }); i >= 0 {
				checkEvent(t, "ListEvents("+c.name+")", g, es[i])
			}
		}
	}
}

// testListEventsLimit returns the newest Limit events.
func testListEventsLimit(t *testing.T, s latchkey.Store) {
	var es []*latchkey.Event
	for i := range 5 {
		es = append(es, &latchkey.Event{At: base.Add(time.Duration(i) * time.Minute), Kind: latchkey.EventSignIn})
	}
	appendEvents(t, s, es...)
	for _, limit := range []int{1, 2, 5, 6} {
		got := listEvents(t, s, latchkey.EventFilter{Limit: limit})
		want := []int64{}
		for i := len(es) - 1; i >= 0 && len(want) < limit; i-- {
			want = append(want, es[i].ID)
		}
		if !slices.Equal(eventIDs(got), want) {
			t.Errorf("ListEvents(Limit %d) ids = %v, want %v", limit, eventIDs(got), want)
		}
	}
}

// testListEventsDefaultLimit checks that Limit 0 means 100.
func testListEventsDefaultLimit(t *testing.T, s latchkey.Store) {
	const n = 103
	var es []*latchkey.Event
	for i := range n {
		es = append(es, &latchkey.Event{At: base.Add(time.Duration(i) * time.Second), Kind: latchkey.EventSignIn})
	}
	appendEvents(t, s, es...)
	got := listEvents(t, s, latchkey.EventFilter{})
	if len(got) != 100 {
		t.Fatalf("ListEvents(Limit 0): got %d events, want 100", len(got))
	}
	if got[0].ID != es[n-1].ID || got[99].ID != es[n-100].ID {
		t.Errorf("ListEvents(Limit 0): first and last ids %d, %d; want the newest 100, %d to %d",
			got[0].ID, got[99].ID, es[n-1].ID, es[n-100].ID)
	}
}

func testListEventsNone(t *testing.T, s latchkey.Store) {
	got := listEvents(t, s, latchkey.EventFilter{})
	if len(got) != 0 {
		t.Errorf("ListEvents on an empty store: got %d events, want 0", len(got))
	}
}
