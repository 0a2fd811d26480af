package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
)

// rotation returns the rotation the engine's happy path makes for x at base:
// from x's generation and current hash to the next one, renewing the idle
// deadline.
func rotation(x *latchkey.Session) latchkey.Rotation {
	return latchkey.Rotation{
		ID:            x.ID,
		Mode:          x.Mode,
		RotationKeyID: x.RotationKeyID,
		From:          x.Generation,
		Hash:          x.CurrentHash,
		To:            x.Generation + 1,
		CurrentHash:   x.NextHash,
		NextHash:      hash("next", x.ID, x.Generation+2),
		Now:           base,
		IdleDeadline:  base.Add(idleTTL),
		UserAgent:     "Mozilla/5.0 (Rotating)",
		DeviceID:      "device-rotating",
	}
}

// rotated returns the session x becomes after r succeeds.
func rotated(x *latchkey.Session, r latchkey.Rotation) *latchkey.Session {
	want := *x
	want.Generation = r.To
	want.CurrentHash, want.NextHash = r.CurrentHash, r.NextHash
	want.RotatedAt, want.LastUsedAt = r.Now, r.Now
	want.RotatedUserAgent, want.RotatedDeviceID = r.UserAgent, r.DeviceID
	want.IdleDeadline = r.IdleDeadline
	if want.AbsoluteDeadline.Before(want.IdleDeadline) {
		want.IdleDeadline = want.AbsoluteDeadline
	}
	return &want
}

func rotateTests() []test {
	tests := []test{
		{"Success", testRotateSuccess},
		{"ChoosesTheSessionsKey", testRotateChoosesKey},
		{"SuccessFromRotated", testRotateSuccessFromRotated},
		{"MatchNext", testRotateMatchNext},
		{"IdleDeadlineClampedToAbsolute", testRotateIdleClamped},
		{"InTx", testRotateInTx},
	}
	// Each case breaks one part of the condition; the rotation must then
	// return ErrNotFound and change nothing.
	cases := []struct {
		name    string
		user    func(*latchkey.User)
		session func(*latchkey.Session)
		rot     func(*latchkey.Rotation)
	}{
		{name: "GenerationAhead", rot: func(r *latchkey.Rotation) { r.From++; r.To++ }},
		{name: "GenerationBehind", rot: func(r *latchkey.Rotation) { r.From--; r.To-- }},
		{name: "WrongHash", rot: func(r *latchkey.Rotation) { r.Hash = hash("forged") }},
		{name: "NextHashWithoutMatchNext", rot: func(r *latchkey.Rotation) { r.Hash = r.CurrentHash }},
		{name: "MatchNextWithCurrentHash", rot: func(r *latchkey.Rotation) { r.MatchNext = true }},
		{name: "WrongMode", rot: func(r *latchkey.Rotation) { r.Mode = latchkey.ModeMobile }},
		{name: "WrongRotationKeyID", rot: func(r *latchkey.Rotation) { r.RotationKeyID = "rotation-key-2" }},
		{name: "Revoked", session: revoked},
		{name: "RevokedJustNow", session: func(x *latchkey.Session) {
			x.RevokedAt, x.RevokeReason = base, latchkey.RevokeAdmin
		}},
		{name: "IdleDeadlinePassed", session: func(x *latchkey.Session) { x.IdleDeadline = base.Add(-time.Microsecond) }},
		{name: "IdleDeadlineIsNow", session: func(x *latchkey.Session) { x.IdleDeadline = base }},
		{name: "AbsoluteDeadlinePassed", session: func(x *latchkey.Session) {
			x.AbsoluteDeadline = base.Add(-time.Microsecond)
		}},
		{name: "AbsoluteDeadlineIsNow", session: func(x *latchkey.Session) { x.AbsoluteDeadline = base }},
		{name: "UserInactive", user: inactive},
		{name: "UnknownSession", rot: func(r *latchkey.Rotation) { r.ID = uuid.New() }},
	}
	for _, c := range cases {
		tests = append(tests, test{"Refused" + c.name, func(t *testing.T, s latchkey.Store) {
			ctx := t.Context()
			u := addUser(t, s)
			if c.user != nil {
				u = addUser(t, s, c.user)
			}
			x := addSession(t, s, u.ID)
			if c.session != nil {
				x = addSession(t, s, u.ID, c.session)
			}
			// A second, live session of the same user must not be touched
			// either.
			bystander := addSession(t, s, u.ID)
			before, bystanderBefore := getSession(t, s, x.ID), getSession(t, s, bystander.ID)
			r := rotation(x)
			if c.rot != nil {
				c.rot(&r)
			}
			got, err := s.RotateSession(ctx, r)
			if !errors.Is(err, latchkey.ErrNotFound) {
				t.Fatalf("RotateSession = %+v, %v; want ErrNotFound", got, err)
			}
			checkSession(t, "session after refused rotation", getSession(t, s, x.ID), before)
			checkSession(t, "other session after refused rotation", getSession(t, s, bystander.ID), bystanderBefore)
		}})
	}
	return tests
}

// testRotateSuccess rotates a fresh session and checks both what the write
// returns (read in the same statement) and what it stores.
func testRotateSuccess(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	u := addUser(t, s, func(u *latchkey.User) { u.Role, u.TokenVersion = latchkey.RoleAdmin, 3 })
	x := addSession(t, s, u.ID)
	other := addSession(t, s, u.ID)
	r := rotation(x)
	got, err := s.RotateSession(ctx, r)
	if err != nil {
		t.Fatalf("RotateSession: %v", err)
	}
	checkRotated(t, "RotateSession", got, &latchkey.Rotated{
		UserID: u.ID, Role: latchkey.RoleAdmin, TokenVersion: 3, Generation: r.To,
		IdleDeadline: r.IdleDeadline, AbsoluteDeadline: x.AbsoluteDeadline,
	})
	checkSession(t, "rotated session", getSession(t, s, x.ID), rotated(x, r))
	checkSession(t, "other session", getSession(t, s, other.ID), other)

	// The old condition no longer holds; the new one does.
	if _, err := s.RotateSession(ctx, r); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("RotateSession(same rotation again) error = %v, want ErrNotFound", err)
	}
	next := rotation(rotated(x, r))
	next.Now = base.Add(time.Minute)
	next.IdleDeadline = next.Now.Add(idleTTL)
	if _, err := s.RotateSession(ctx, next); err != nil {
		t.Fatalf("RotateSession(next generation): %v", err)
	}
	checkSession(t, "session rotated twice", getSession(t, s, x.ID), rotated(rotated(x, r), next))
}

// testRotateSuccessFromRotated rotates a mobile session that has rotated
// before, from a high generation, under a user whose fields all differ from
// newUser's.
func testRotateSuccessFromRotated(t *testing.T, s latchkey.Store) {
	u := addUser(t, s, func(u *latchkey.User) { u.TokenVersion = 41 })
	x := addSession(t, s, u.ID, func(x *latchkey.Session) {
		x.Mode = latchkey.ModeMobile
		x.Generation = 1 << 33
		x.RotatedAt = base.Add(-time.Hour)
		x.RotatedUserAgent, x.RotatedDeviceID = "old agent", "old device"
		x.RotationKeyID = "rotation-key-7"
	})
	r := rotation(x)
	r.UserAgent, r.DeviceID = "", "" // a client that sends neither
	got, err := s.RotateSession(t.Context(), r)
	if err != nil {
		t.Fatalf("RotateSession: %v", err)
	}
	checkRotated(t, "RotateSession", got, &latchkey.Rotated{
		UserID: u.ID, Role: latchkey.RoleUser, TokenVersion: 41, Generation: 1<<33 + 1,
		IdleDeadline: r.IdleDeadline, AbsoluteDeadline: x.AbsoluteDeadline,
	})
	checkSession(t, "rotated session", getSession(t, s, x.ID), rotated(x, r))
}

// testRotateMatchNext recovers a lost rotation: with MatchNext the write
// matches next_hash, not current_hash.
func testRotateMatchNext(t *testing.T, s latchkey.Store) {
	u := addUser(t, s)
	x := addSession(t, s, u.ID, func(x *latchkey.Session) { x.Generation = 5 })
	r := rotation(x)
	r.MatchNext = true
	r.Hash = x.NextHash
	r.To = 7
	r.CurrentHash = hash("current", x.ID, 7)
	r.NextHash = hash("next", x.ID, 8)
	got, err := s.RotateSession(t.Context(), r)
	if err != nil {
		t.Fatalf("RotateSession(MatchNext, next hash): %v", err)
	}
	checkRotated(t, "RotateSession", got, &latchkey.Rotated{
		UserID: u.ID, Role: latchkey.RoleUser, Generation: 7,
		IdleDeadline: r.IdleDeadline, AbsoluteDeadline: x.AbsoluteDeadline,
	})
	checkSession(t, "rotated session", getSession(t, s, x.ID), rotated(x, r))
}

// testRotateIdleClamped renews the idle deadline past the absolute one: the
// stored and returned idle deadline is the absolute deadline.
func testRotateIdleClamped(t *testing.T, s latchkey.Store) {
	u := addUser(t, s)
	x := addSession(t, s, u.ID, func(x *latchkey.Session) {
		x.AbsoluteDeadline = base.Add(day + time.Microsecond)
		x.IdleDeadline = base.Add(time.Hour)
	})
	r := rotation(x) // idle deadline base + 7 days, past the absolute one
	got, err := s.RotateSession(t.Context(), r)
	if err != nil {
		t.Fatalf("RotateSession: %v", err)
	}
	if !got.IdleDeadline.Equal(x.AbsoluteDeadline) {
		t.Errorf("Rotated.IdleDeadline = %v, want the absolute deadline %v", got.IdleDeadline, x.AbsoluteDeadline)
	}
	if !got.AbsoluteDeadline.Equal(x.AbsoluteDeadline) {
		t.Errorf("Rotated.AbsoluteDeadline = %v, want %v", got.AbsoluteDeadline, x.AbsoluteDeadline)
	}
	stored := getSession(t, s, x.ID)
	if !stored.IdleDeadline.Equal(x.AbsoluteDeadline) {
		t.Errorf("stored IdleDeadline = %v, want the absolute deadline %v", stored.IdleDeadline, x.AbsoluteDeadline)
	}
	checkSession(t, "rotated session", stored, rotated(x, r))
}

// testRotateInTx rotates on a transaction's store: the rotation is visible
// after commit and gone after rollback.
func testRotateInTx(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	u := addUser(t, s)
	x := addSession(t, s, u.ID)
	r := rotation(x)
	errRollback := errors.New("roll back")
	err := s.InTx(ctx, func(tx latchkey.Store) error {
		if _, err := tx.RotateSession(ctx, r); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("InTx = %v, want %v", err, errRollback)
	}
	checkSession(t, "session after rolled-back rotation", getSession(t, s, x.ID), x)

	err = s.InTx(ctx, func(tx latchkey.Store) error {
		_, err := tx.RotateSession(ctx, r)
		return err
	})
	if err != nil {
		t.Fatalf("InTx(RotateSession): %v", err)
	}
	checkSession(t, "session after committed rotation", getSession(t, s, x.ID), rotated(x, r))
}

// graceEvent returns the event the engine records when it answers a retry of
// x's previous token with the current one.
func graceEvent(x *latchkey.Session) *latchkey.Event {
	return &latchkey.Event{
		At:        base,
		UserID:    x.UserID,
		SessionID: x.ID,
		Kind:      latchkey.EventGraceAnswer,
		IP:        "198.51.100.4",
		UserAgent: "Mozilla/5.0 (Retrying)",
		Detail:    "generation 4 answered with 5",
	}
}

func graceTests() []test {
	tests := []test{
		{"Success", testGraceSuccess},
	}
	// Each case breaks one part of the condition; nothing may be written.
	cases := []struct {
		name    string
		user    func(*latchkey.User)
		session func(*latchkey.Session)
		gen     func(uint64) uint64
		hash    func(*latchkey.Session) []byte
		event   func(*latchkey.Event)
	}{
		{name: "GenerationBehind", gen: func(g uint64) uint64 { return g - 1 }},
		{name: "GenerationAhead", gen: func(g uint64) uint64 { return g + 1 }},
		{name: "NextHash", hash: func(x *latchkey.Session) []byte { return x.NextHash }},
		{name: "WrongHash", hash: func(*latchkey.Session) []byte { return hash("forged") }},
		{name: "Revoked", session: revoked},
		{name: "IdleDeadlinePassed", session: func(x *latchkey.Session) { x.IdleDeadline = base.Add(-time.Microsecond) }},
		{name: "IdleDeadlineIsNow", session: func(x *latchkey.Session) { x.IdleDeadline = base }},
		{name: "AbsoluteDeadlinePassed", session: func(x *latchkey.Session) {
			x.AbsoluteDeadline = base.Add(-time.Microsecond)
		}},
		{name: "AbsoluteDeadlineIsNow", session: func(x *latchkey.Session) { x.AbsoluteDeadline = base }},
		{name: "AtAfterIdleDeadline", event: func(e *latchkey.Event) { e.At = base.Add(idleTTL) }},
		{name: "UserInactive", user: inactive},
		{name: "UnknownSession", event: func(e *latchkey.Event) { e.SessionID = uuid.New() }},
	}
	for _, c := range cases {
		tests = append(tests, test{"Refused" + c.name, func(t *testing.T, s latchkey.Store) {
			ctx := t.Context()
			u := addUser(t, s)
			if c.user != nil {
				u = addUser(t, s, c.user)
			}
			live := func(x *latchkey.Session) { x.Generation = 5 }
			x := addSession(t, s, u.ID, live)
			if c.session != nil {
				x = addSession(t, s, u.ID, live, c.session)
			}
			before := getSession(t, s, x.ID)
			gen, h, e := x.Generation, x.CurrentHash, graceEvent(x)
			if c.gen != nil {
				gen = c.gen(gen)
			}
			if c.hash != nil {
				h = c.hash(x)
			}
			if c.event != nil {
				c.event(e)
			}
			got, err := s.RecordGraceAnswer(ctx, gen, h, e)
			if !errors.Is(err, latchkey.ErrNotFound) {
				t.Fatalf("RecordGraceAnswer = %+v, %v; want ErrNotFound", got, err)
			}
			if es := listEvents(t, s, latchkey.EventFilter{}); len(es) != 0 {
				t.Errorf("refused grace answer wrote %d events, want 0", len(es))
			}
			checkSession(t, "session after refused grace answer", getSession(t, s, x.ID), before)
		}})
	}
	return tests
}

// testGraceSuccess records a grace answer for a live session and checks the
// state it returns and the one event it writes.
func testGraceSuccess(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	u := addUser(t, s, func(u *latchkey.User) { u.Role, u.TokenVersion = latchkey.RoleAdmin, 2 })
	x := addSession(t, s, u.ID, func(x *latchkey.Session) {
		x.Generation = 5
		x.RotatedAt = base.Add(-3 * time.Second)
		x.RotatedUserAgent = "Mozilla/5.0 (Retrying)"
	})
	other := addSession(t, s, u.ID)
	e := graceEvent(x)
	want := *e
	got, err := s.RecordGraceAnswer(ctx, x.Generation, x.CurrentHash, e)
	if err != nil {
		t.Fatalf("RecordGraceAnswer: %v", err)
	}
	checkRotated(t, "RecordGraceAnswer", got, &latchkey.Rotated{
		UserID: u.ID, Role: latchkey.RoleAdmin, TokenVersion: 2, Generation: 5,
		IdleDeadline: x.IdleDeadline, AbsoluteDeadline: x.AbsoluteDeadline,
	})
	es := listEvents(t, s, latchkey.EventFilter{})
	if len(es) != 1 {
		t.Fatalf("events after grace answer: got %d, want 1", len(es))
	}
	checkEvent(t, "grace_answer event", es[0], &want)
	if bySession := listEvents(t, s, latchkey.EventFilter{SessionID: x.ID, Kind: latchkey.EventGraceAnswer}); len(bySession) != 1 {
		t.Errorf("ListEvents(session, grace_answer): got %d events, want 1", len(bySession))
	}
	if none := listEvents(t, s, latchkey.EventFilter{SessionID: other.ID}); len(none) != 0 {
		t.Errorf("ListEvents(other session): got %d events, want 0", len(none))
	}
}

// testRotateChoosesKey offers hashes under several rotation keys: the write
// applies the pair of the key the session has and reports which.
func testRotateChoosesKey(t *testing.T, s latchkey.Store) {
	u := addUser(t, s)
	x := addSession(t, s, u.ID) // its key is the one rotation(x) names
	r := rotation(x)
	mine := latchkey.RotationHashes{RotationKeyID: r.RotationKeyID, CurrentHash: r.CurrentHash, NextHash: r.NextHash}
	r.RotationKeyID, r.CurrentHash, r.NextHash = "newer-key", hash("newer", "current"), hash("newer", "next")
	r.Alternatives = []latchkey.RotationHashes{{RotationKeyID: "other-key", CurrentHash: hash("o", 1), NextHash: hash("o", 2)}, mine}
	got, err := s.RotateSession(t.Context(), r)
	if err != nil {
		t.Fatalf("RotateSession with the session's key among the alternatives: %v", err)
	}
	if got.RotationKeyID != mine.RotationKeyID {
		t.Fatalf("Rotated.RotationKeyID = %q, want the session's key %q", got.RotationKeyID, mine.RotationKeyID)
	}
	after := getSession(t, s, x.ID)
	if !bytes.Equal(after.CurrentHash, mine.CurrentHash) || !bytes.Equal(after.NextHash, mine.NextHash) ||
		after.RotationKeyID != mine.RotationKeyID {
		t.Fatalf("stored hashes are not those of the session's key")
	}
	// None of the offered keys is the session's: nothing matches.
	y := addSession(t, s, u.ID)
	r2 := rotation(y)
	r2.RotationKeyID = "newer-key"
	r2.Alternatives = []latchkey.RotationHashes{{RotationKeyID: "other-key", CurrentHash: hash("o", 1), NextHash: hash("o", 2)}}
	if _, err := s.RotateSession(t.Context(), r2); !errors.Is(err, latchkey.ErrNotFound) {
		t.Fatalf("RotateSession without the session's key = %v, want ErrNotFound", err)
	}
	checkSession(t, "session not rotated", getSession(t, s, y.ID), y)
}
