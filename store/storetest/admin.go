package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
)

var adminTests = []test{
	{"ListUsersPages", testListUsersPages},
	{"ListUsersEmailSearch", testListUsersEmailSearch},
	{"DeleteUser", testDeleteUser},
	{"DeleteUserNotFound", testDeleteUserNotFound},
	{"RevokedSinceFeed", testRevokedSince},
	{"Now", testNow},
}

// testListUsersPages pages through users in creation order with a total.
func testListUsersPages(t *testing.T, s latchkey.Store) {
	var want []*latchkey.User
	for i := range 5 {
		want = append(want, addUser(t, s, func(u *latchkey.User) { u.CreatedAt = base.Add(time.Duration(i) * time.Minute) }))
	}
	var got []*latchkey.User
	for offset := 0; offset < 6; offset += 2 {
		page, total, err := s.ListUsers(t.Context(), latchkey.UserQuery{Offset: offset, Limit: 2})
		if err != nil || total != 5 {
			t.Fatalf("ListUsers(offset %d) total = %d, %v; want 5", offset, total, err)
		}
		if len(page) > 2 {
			t.Fatalf("page of %d, want at most 2", len(page))
		}
		got = append(got, page...)
	}
	if len(got) != 5 {
		t.Fatalf("paged through %d users, want 5", len(got))
	}
	for i := range want {
		checkUser(t, fmt.Sprintf("user %d", i), got[i], want[i])
	}
	all, _, err := s.ListUsers(t.Context(), latchkey.UserQuery{})
	if err != nil || len(all) != 5 {
		t.Fatalf("ListUsers with the default limit = %d, %v", len(all), err)
	}
}

// testListUsersEmailSearch matches a substring of the email regardless of
// case, and treats SQL wildcards literally.
func testListUsersEmailSearch(t *testing.T, s latchkey.Store) {
	ada := addUser(t, s, func(u *latchkey.User) { u.Email = "ada.lovelace@example.com" })
	addUser(t, s, func(u *latchkey.User) { u.Email = "charles@example.com" })
	addUser(t, s, func(u *latchkey.User) { u.Email = "grace_hopper@example.com" })
	page, total, err := s.ListUsers(t.Context(), latchkey.UserQuery{Email: "LOVELACE"})
	if err != nil || total != 1 || len(page) != 1 || page[0].ID != ada.ID {
		t.Fatalf("search LOVELACE = %d users (total %d), %v; want ada", len(page), total, err)
	}
	for _, q := range []string{"%", "a_a"} {
		page, total, err = s.ListUsers(t.Context(), latchkey.UserQuery{Email: q})
		if err != nil || total != 0 || len(page) != 0 {
			t.Fatalf("search %q = %d users, %v; want none (wildcards are literal)", q, total, err)
		}
	}
	page, total, _ = s.ListUsers(t.Context(), latchkey.UserQuery{Email: "_"})
	if total != 1 || len(page) != 1 {
		t.Fatalf("search _ = %d users, want grace_hopper only", total)
	}
}

// testDeleteUser removes the user, revokes its sessions (kept for the
// revocation feed) and keeps its events; other users are untouched.
func testDeleteUser(t *testing.T, s latchkey.Store) {
	u := addUser(t, s)
	other := addUser(t, s)
	x := addSession(t, s, u.ID)
	gone := addSession(t, s, u.ID, revoked)
	kept := addSession(t, s, other.ID)
	ev := &latchkey.Event{At: base, UserID: u.ID, SessionID: x.ID, Kind: latchkey.EventSignIn}
	if err := s.AppendEvent(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(t.Context(), u.ID, base); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if _, err := s.UserByID(t.Context(), u.ID); !errors.Is(err, latchkey.ErrNotFound) {
		t.Fatalf("deleted user: %v", err)
	}
	want := *x
	want.RevokedAt, want.RevokeReason = base, latchkey.RevokeAdmin
	checkSession(t, "deleted user's session", getSession(t, s, x.ID), &want)
	checkSession(t, "deleted user's already revoked session", getSession(t, s, gone.ID), gone)
	checkSession(t, "other user's session", getSession(t, s, kept.ID), kept)
	feed, err := s.RevokedSince(t.Context(), latchkey.RevocationCursor{At: base.Add(-time.Microsecond)}, 10)
	if err != nil || len(feed) != 1 || feed[0].ID != x.ID {
		t.Fatalf("revocation feed after the deletion = %d entries, %v; want the deleted user's session", len(feed), err)
	}
	if _, live, err := s.AuthState(t.Context(), u.ID, x.ID, base); !errors.Is(err, latchkey.ErrNotFound) || live {
		t.Fatalf("AuthState of the deleted user = %v, %v; want ErrNotFound", live, err)
	}
	if evs := listEvents(t, s, latchkey.EventFilter{UserID: u.ID}); len(evs) != 1 {
		t.Fatalf("deleted user's events = %d, want 1 kept", len(evs))
	}
	if n, err := s.DeleteSessionsBefore(t.Context(), base.Add(365*day), 100); err != nil || n != 3 {
		t.Fatalf("cleanup after the deletion removed %d sessions, %v; want all 3", n, err)
	}
}

func testDeleteUserNotFound(t *testing.T, s latchkey.Store) {
	if err := s.DeleteUser(t.Context(), uuid.New(), base); !errors.Is(err, latchkey.ErrNotFound) {
		t.Fatalf("DeleteUser(unknown) = %v, want ErrNotFound", err)
	}
}

// testRevokedSince reads the feed in pages by cursor, including sessions
// revoked at the same instant.
func testRevokedSince(t *testing.T, s latchkey.Store) {
	u := addUser(t, s)
	addSession(t, s, u.ID) // live: never in the feed
	var revokedIDs []uuid.UUID
	times := []time.Duration{time.Second, 2 * time.Second, 2 * time.Second, 3 * time.Second}
	for _, d := range times {
		x := addSession(t, s, u.ID)
		if err := s.RevokeSession(t.Context(), x.ID, latchkey.RevokeLogout, base.Add(d)); err != nil {
			t.Fatal(err)
		}
		revokedIDs = append(revokedIDs, x.ID)
	}
	var got []*latchkey.Session
	var cur latchkey.RevocationCursor
	for range 10 {
		page, err := s.RevokedSince(t.Context(), cur, 3)
		if err != nil {
			t.Fatalf("RevokedSince: %v", err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		last := page[len(page)-1]
		cur = latchkey.RevocationCursor{At: last.RevokedAt, ID: last.ID}
	}
	if len(got) != 4 {
		t.Fatalf("feed returned %d sessions, want 4", len(got))
	}
	seen := map[uuid.UUID]bool{}
	for i, x := range got {
		if seen[x.ID] {
			t.Fatalf("session %s returned twice", x.ID)
		}
		seen[x.ID] = true
		if i > 0 && x.RevokedAt.Before(got[i-1].RevokedAt) {
			t.Fatal("feed not ordered by revocation time")
		}
		if x.RevokeReason != latchkey.RevokeLogout {
			t.Fatalf("reason %q", x.RevokeReason)
		}
	}
	for _, id := range revokedIDs {
		if !seen[id] {
			t.Fatalf("revoked session %s missing from the feed", id)
		}
	}
	later, err := s.RevokedSince(t.Context(), latchkey.RevocationCursor{At: base.Add(2 * time.Second).Add(time.Microsecond)}, 10)
	if err != nil || len(later) != 1 || later[0].ID != revokedIDs[3] {
		t.Fatalf("feed after 2s = %d sessions, %v; want the last one", len(later), err)
	}
}

// testNow reads the database's clock, which must be close to this
// process's (they run on the same machine in tests).
func testNow(t *testing.T, s latchkey.Store) {
	before := time.Now().Add(-time.Second)
	got, err := s.Now(t.Context())
	after := time.Now().Add(time.Second)
	if err != nil {
		t.Fatalf("Now: %v", err)
	}
	if got.Before(before) || got.After(after) {
		t.Fatalf("database clock %v, process clock between %v and %v", got, before, after)
	}
}
