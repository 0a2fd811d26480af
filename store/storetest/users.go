package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
)

var userTests = append([]test{
	{"UpdateUserIfPasswordHash", testUpdateUserIfPasswordHash},
	{"CreateUserRoundTrip", testCreateUserRoundTrip},
	{"UserByIDNotFound", testUserByIDNotFound},
	{"UserByEmailNotFound", testUserByEmailNotFound},
	{"CreateUserEmailTaken", testCreateUserEmailTaken},
	{"CreateUserEmailTakenOtherCase", testCreateUserEmailTakenOtherCase},
	{"UpdateUserNotFound", testUpdateUserNotFound},
	{"UpdateUserEmailTaken", testUpdateUserEmailTaken},
}, updateUserTests()...)

// testCreateUserRoundTrip stores users with every field set (and with the
// booleans both ways) and reads them back by id and by email, times to the
// microsecond.
func testCreateUserRoundTrip(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	admin := newUser()
	admin.FullName = "Grace Hopper — ünïcödé"
	admin.Role = latchkey.RoleAdmin
	admin.IsActive = true
	admin.IsVerified = true
	admin.TokenVersion = 7
	admin.CreatedAt = base.Add(-3*day + time.Microsecond)
	admin.UpdatedAt = base.Add(-time.Microsecond)

	plain := newUser()
	plain.FullName = ""
	plain.IsActive = false
	plain.IsVerified = false
	plain.CreatedAt = base
	plain.UpdatedAt = base

	for _, u := range []*latchkey.User{admin, plain} {
		want := *u
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser(%s): %v", u.Email, err)
		}
		got, err := s.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatalf("UserByID(%s): %v", u.ID, err)
		}
		checkUser(t, "UserByID", got, &want)
		got, err = s.UserByEmail(ctx, u.Email)
		if err != nil {
			t.Fatalf("UserByEmail(%s): %v", u.Email, err)
		}
		checkUser(t, "UserByEmail", got, &want)
	}
}

func testUserByIDNotFound(t *testing.T, s latchkey.Store) {
	addUser(t, s)
	for _, id := range []uuid.UUID{uuid.Must(uuid.NewV7()), uuid.Nil} {
		u, err := s.UserByID(t.Context(), id)
		if !errors.Is(err, latchkey.ErrNotFound) {
			t.Errorf("UserByID(%s) = %v, %v; want ErrNotFound", id, u, err)
		}
	}
}

func testUserByEmailNotFound(t *testing.T, s latchkey.Store) {
	addUser(t, s)
	u, err := s.UserByEmail(t.Context(), "nobody@example.com")
	if !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("UserByEmail(nobody@example.com) = %v, %v; want ErrNotFound", u, err)
	}
}

func testCreateUserEmailTaken(t *testing.T, s latchkey.Store) {
	first := addUser(t, s)
	dup := newUser()
	dup.Email = first.Email
	if err := s.CreateUser(t.Context(), dup); !errors.Is(err, latchkey.ErrEmailTaken) {
		t.Fatalf("CreateUser(duplicate email) = %v, want ErrEmailTaken", err)
	}
	if _, err := s.UserByID(t.Context(), dup.ID); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("UserByID(rejected user) error = %v, want ErrNotFound", err)
	}
	checkUser(t, "UserByEmail after rejected duplicate", getUser(t, s, first.ID), first)
}

// testCreateUserEmailTakenOtherCase checks that emails are unique
// case-insensitively, whichever spelling came first.
func testCreateUserEmailTakenOtherCase(t *testing.T, s latchkey.Store) {
	for _, pair := range [][2]string{
		{"alice@example.com", "ALICE@Example.COM"},
		{"Bob@Example.com", "bob@example.com"},
	} {
		addUser(t, s, func(u *latchkey.User) { u.Email = pair[0] })
		dup := newUser()
		dup.Email = pair[1]
		if err := s.CreateUser(t.Context(), dup); !errors.Is(err, latchkey.ErrEmailTaken) {
			t.Errorf("CreateUser(%q after %q) = %v, want ErrEmailTaken", pair[1], pair[0], err)
		}
	}
}

func testUpdateUserNotFound(t *testing.T, s latchkey.Store) {
	addUser(t, s)
	name := "Nobody"
	id := uuid.Must(uuid.NewV7())
	u, err := s.UpdateUser(t.Context(), id, latchkey.UserPatch{FullName: &name, BumpTokenVersion: true}, base)
	if !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("UpdateUser(unknown id) = %v, %v; want ErrNotFound", u, err)
	}
}

// testUpdateUserEmailTaken changes an email to one another user holds, in
// the same and in another case; the update fails as a whole.
func testUpdateUserEmailTaken(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	holder := addUser(t, s)
	mover := addUser(t, s)
	for _, email := range []string{holder.Email, strings.ToUpper(holder.Email)} {
		name := "Changed"
		u, err := s.UpdateUser(ctx, mover.ID, latchkey.UserPatch{Email: &email, FullName: &name, BumpTokenVersion: true}, base)
		if !errors.Is(err, latchkey.ErrEmailTaken) {
			t.Errorf("UpdateUser(email %q) = %v, %v; want ErrEmailTaken", email, u, err)
		}
	}
	checkUser(t, "user whose update failed", getUser(t, s, mover.ID), mover)
	checkUser(t, "holder of the email", getUser(t, s, holder.ID), holder)
}

// updateUserTests returns one subtest per UserPatch field, one with every
// field and one with none: each changes exactly what it names plus
// updated_at, and returns the stored user.
func updateUserTests() []test {
	email := "renamed@example.com"
	name := "Katherine Johnson"
	role := latchkey.RoleAdmin
	no, yes := false, true
	pw := "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdG5ld3NhbHQ$bmV3aGFzaG5ld2hhc2huZXdoYXNobmV3aGFzaG5ldw"
	cases := []struct {
		name  string
		patch latchkey.UserPatch
		apply func(*latchkey.User)
	}{
		{"Empty", latchkey.UserPatch{}, func(*latchkey.User) {}},
		{"Email", latchkey.UserPatch{Email: &email}, func(u *latchkey.User) { u.Email = email }},
		{"FullName", latchkey.UserPatch{FullName: &name}, func(u *latchkey.User) { u.FullName = name }},
		{"Role", latchkey.UserPatch{Role: &role}, func(u *latchkey.User) { u.Role = role }},
		{"IsActive", latchkey.UserPatch{IsActive: &no}, func(u *latchkey.User) { u.IsActive = false }},
		{"IsVerified", latchkey.UserPatch{IsVerified: &yes}, func(u *latchkey.User) { u.IsVerified = true }},
		{"PasswordHash", latchkey.UserPatch{PasswordHash: &pw}, func(u *latchkey.User) { u.PasswordHash = pw }},
		{"BumpTokenVersion", latchkey.UserPatch{BumpTokenVersion: true}, func(u *latchkey.User) { u.TokenVersion++ }},
		{"Everything", latchkey.UserPatch{Email: &email, FullName: &name, Role: &role, IsActive: &no,
			IsVerified: &yes, PasswordHash: &pw, BumpTokenVersion: true}, func(u *latchkey.User) {
			u.Email, u.FullName, u.Role, u.IsActive, u.IsVerified, u.PasswordHash = email, name, role, false, true, pw
			u.TokenVersion++
		}},
	}
	var tests []test
	for _, c := range cases {
		tests = append(tests, test{"UpdateUser" + c.name, func(t *testing.T, s latchkey.Store) {
			ctx := t.Context()
			u := addUser(t, s, func(u *latchkey.User) { u.TokenVersion = 4 })
			other := addUser(t, s)
			want := *u
			c.apply(&want)
			want.UpdatedAt = base
			got, err := s.UpdateUser(ctx, u.ID, c.patch, base)
			if err != nil {
				t.Fatalf("UpdateUser: %v", err)
			}
			checkUser(t, "UpdateUser result", got, &want)
			checkUser(t, "UserByID after UpdateUser", getUser(t, s, u.ID), &want)
			checkUser(t, "other user", getUser(t, s, other.ID), other)
			if c.patch.Email != nil {
				byEmail, err := s.UserByEmail(ctx, email)
				if err != nil {
					t.Fatalf("UserByEmail(new email): %v", err)
				}
				checkUser(t, "UserByEmail(new email)", byEmail, &want)
				if _, err := s.UserByEmail(ctx, u.Email); !errors.Is(err, latchkey.ErrNotFound) {
					t.Errorf("UserByEmail(old email) error = %v, want ErrNotFound", err)
				}
			}
		}})
	}
	return tests
}

// testUpdateUserIfPasswordHash applies a conditional write only while the
// stored hash is the expected one; otherwise ErrNotFound and nothing changes.
func testUpdateUserIfPasswordHash(t *testing.T, s latchkey.Store) {
	u := addUser(t, s)
	stale, next, name := "$argon2id$stale", "$argon2id$next", "Changed"
	_, err := s.UpdateUser(t.Context(), u.ID, latchkey.UserPatch{PasswordHash: &next, FullName: &name,
		IfPasswordHash: &stale}, base)
	if !errors.Is(err, latchkey.ErrNotFound) {
		t.Fatalf("UpdateUser with a stale IfPasswordHash = %v, want ErrNotFound", err)
	}
	checkUser(t, "after the refused write", getUser(t, s, u.ID), u)
	got, err := s.UpdateUser(t.Context(), u.ID, latchkey.UserPatch{PasswordHash: &next, IfPasswordHash: &u.PasswordHash}, base)
	if err != nil || got.PasswordHash != next {
		t.Fatalf("UpdateUser with the current IfPasswordHash = %v, %v", got, err)
	}
}
