package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/httpapi"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

func register(tb testing.TB, srv *latchkeytest.Server, email, password, name string) *answer {
	tb.Helper()
	return send(tb, srv, nil, request{method: "POST", path: "/v1/users",
		json: map[string]string{"email": email, "password": password, "full_name": name}})
}

// generousRegistration lifts the registration limit for tests that
// register many accounts from one address.
func generousRegistration(o *httpapi.Options) {
	o.Limits.RegisterPerIP = httpapi.Rate{PerMinute: 1000, Burst: 1000}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(generousRegistration))

	t.Run("created", func(t *testing.T) {
		r := register(t, srv, "  New.User@Test.Example ", strongPassword, "New User")
		var u httpapi.UserJSON
		r.decode(t, http.StatusCreated, &u)
		if u.ID == uuid.Nil || u.Email != "new.user@test.example" || u.FullName != "New User" ||
			u.Role != latchkey.RoleUser || !u.IsActive || u.CreatedAt.IsZero() {
			t.Errorf("registered = %s, want new.user@test.example, New User, user, active", r.body)
		}
		if got, want := r.header.Get("Location"), "/v1/users/"+u.ID.String(); got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
		if strings.Contains(string(r.body), strongPassword) || strings.Contains(string(r.body), "argon2") {
			t.Errorf("registration answer shows the password or its hash: %s", r.body)
		}
		// The new account signs in.
		signIn(t, srv, "new.user@test.example", strongPassword)
	})

	t.Run("duplicate", func(t *testing.T) {
		register(t, srv, "dup@test.example", strongPassword, "").want(t, http.StatusCreated)
		for _, email := range []string{"dup@test.example", "DUP@Test.Example"} {
			register(t, srv, email, strongPassword, "").problem(t, http.StatusConflict, "email_taken", strongPassword)
		}
	})

	invalid := []struct {
		name, email, password, field, code string
	}{
		{"invalid email", "not-an-email", strongPassword, "email", "validation_failed"},
		{"email without domain dot", "a@localhost", strongPassword, "email", "validation_failed"},
		{"missing email", "", strongPassword, "email", "validation_failed"},
		{"short password", "short@test.example", "Ab1!xyz", "password", "validation_failed"},
		{"long password", "long@test.example", strings.Repeat("aB3$", 33), "password", "validation_failed"},
		{"common password", "common@test.example", "password123", "password", "weak_password"},
		{"password is the email", "someone.special@test.example", "someone.special@test.example", "password", "weak_password"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			p := register(t, srv, tc.email, tc.password, "").problem(t, http.StatusUnprocessableEntity, tc.code, tc.password)
			if !fieldNamed(p, tc.field) {
				t.Errorf("errors = %+v, want %s named", p.Errors, tc.field)
			}
		})
	}

	t.Run("long full name", func(t *testing.T) {
		p := register(t, srv, "name@test.example", strongPassword, strings.Repeat("n", 201)).
			problem(t, http.StatusUnprocessableEntity, "validation_failed")
		if !fieldNamed(p, "full_name") {
			t.Errorf("errors = %+v, want full_name named", p.Errors)
		}
	})

	t.Run("malformed body", func(t *testing.T) {
		for name, rq := range map[string]request{
			"not json":      {method: "POST", path: "/v1/users", raw: []byte("{"), contentType: "application/json"},
			"unknown field": {method: "POST", path: "/v1/users", json: map[string]any{"email": "x@test.example", "password": strongPassword, "role": "admin"}},
			"two objects":   {method: "POST", path: "/v1/users", raw: []byte(`{"email":"a@test.example"}{}`), contentType: "application/json"},
		} {
			t.Run(name, func(t *testing.T) {
				send(t, srv, nil, rq).problem(t, http.StatusUnprocessableEntity, "malformed_body")
			})
		}
		send(t, srv, nil, request{method: "POST", path: "/v1/users", raw: []byte(`{}`), contentType: "text/plain"}).
			problem(t, http.StatusUnsupportedMediaType, "unsupported_media_type")
	})
}

func TestRegisterAdminEmail(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(o *httpapi.Options) { o.AdminEmail = "boss@test.example" }))

	var u httpapi.UserJSON
	register(t, srv, "Boss@Test.Example", strongPassword, "").decode(t, http.StatusCreated, &u)
	if u.Role != latchkey.RoleAdmin {
		t.Errorf("role of the admin email = %q, want admin", u.Role)
	}
	register(t, srv, "worker@test.example", strongPassword, "").decode(t, http.StatusCreated, &u)
	if u.Role != latchkey.RoleUser {
		t.Errorf("role of another email = %q, want user", u.Role)
	}
	// The admin can use the admin endpoints.
	s := signIn(t, srv, "boss@test.example", strongPassword)
	send(t, srv, nil, request{method: "GET", path: "/v1/admin/users", bearer: s.access}).want(t, http.StatusOK)

	// Without the setting, nobody becomes an admin by registering.
	plain := latchkeytest.NewServer(t)
	register(t, plain, "boss@test.example", strongPassword, "").decode(t, http.StatusCreated, &u)
	if u.Role != latchkey.RoleUser {
		t.Errorf("role without LATCHKEY_ADMIN_EMAIL = %q, want user", u.Role)
	}
}

func TestGetUser(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t)
	u, s := newSignedInUser(t, srv)
	other := latchkeytest.NewUser(t, srv.Engine)
	_, admin := newSignedInUser(t, srv, latchkeytest.Admin())

	var got httpapi.UserJSON
	send(t, srv, nil, request{method: "GET", path: "/v1/users/" + u.ID.String(), bearer: s.access}).decode(t, http.StatusOK, &got)
	if got.ID != u.ID || got.Email != u.Email {
		t.Errorf("self = %+v, want %s", got, u.Email)
	}
	// Another user's account does not exist for a normal user.
	send(t, srv, nil, request{method: "GET", path: "/v1/users/" + other.ID.String(), bearer: s.access}).
		problem(t, http.StatusNotFound, "not_found")
	// An admin sees it.
	send(t, srv, nil, request{method: "GET", path: "/v1/users/" + other.ID.String(), bearer: admin.access}).decode(t, http.StatusOK, &got)
	if got.ID != other.ID {
		t.Errorf("admin view = %s, want %s", got.ID, other.ID)
	}
	send(t, srv, nil, request{method: "GET", path: "/v1/users/" + uuid.NewString(), bearer: admin.access}).
		problem(t, http.StatusNotFound, "not_found")
	p := send(t, srv, nil, request{method: "GET", path: "/v1/users/not-a-uuid", bearer: s.access}).
		problem(t, http.StatusUnprocessableEntity, "validation_failed")
	if !fieldNamed(p, "id") {
		t.Errorf("errors = %+v, want id named", p.Errors)
	}
	send(t, srv, nil, request{method: "GET", path: "/v1/users/" + u.ID.String()}).problem(t, http.StatusUnauthorized, "not_authenticated")
}

func TestPatchMe(t *testing.T) {
	t.Parallel()

	t.Run("name", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		u, s := newSignedInUser(t, srv)
		var got httpapi.UserJSON
		send(t, srv, nil, request{method: "PATCH", path: "/v1/users/me", bearer: s.access,
			json: map[string]string{"full_name": "  Renamed  "}}).decode(t, http.StatusOK, &got)
		if got.FullName != "Renamed" || got.Email != u.Email {
			t.Errorf("patched = %+v, want full_name Renamed, email unchanged", got)
		}
		me(t, srv, s.access).decode(t, http.StatusOK, &got)
		if got.FullName != "Renamed" {
			t.Errorf("me after patch: full_name = %q, want Renamed", got.FullName)
		}
		p := send(t, srv, nil, request{method: "PATCH", path: "/v1/users/me", bearer: s.access,
			json: map[string]string{"full_name": "bad\x00name"}}).problem(t, http.StatusUnprocessableEntity, "validation_failed")
		if !fieldNamed(p, "full_name") {
			t.Errorf("errors = %+v, want full_name named", p.Errors)
		}
	})

	t.Run("email", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		u, s := newSignedInUser(t, srv)
		taken := latchkeytest.NewUser(t, srv.Engine)

		// Changing the sign-in identifier needs the current password.
		p := send(t, srv, nil, request{method: "PATCH", path: "/v1/users/me", bearer: s.access,
			json: map[string]string{"email": "moved@test.example"}}).problem(t, http.StatusUnprocessableEntity, "validation_failed")
		if !fieldNamed(p, "current_password") {
			t.Errorf("errors = %+v, want current_password named", p.Errors)
		}
		send(t, srv, nil, request{method: "PATCH", path: "/v1/users/me", bearer: s.access,
			json: map[string]string{"email": "moved@test.example", "current_password": "WrongPass123"}}).
			problem(t, http.StatusUnauthorized, "invalid_credentials", "WrongPass123")
		send(t, srv, nil, request{method: "PATCH", path: "/v1/users/me", bearer: s.access,
			json: map[string]string{"email": taken.Email, "current_password": latchkeytest.DefaultPassword}}).
			problem(t, http.StatusConflict, "email_taken")
		p = send(t, srv, nil, request{method: "PATCH", path: "/v1/users/me", bearer: s.access,
			json: map[string]string{"email": "nope", "current_password": latchkeytest.DefaultPassword}}).
			problem(t, http.StatusUnprocessableEntity, "validation_failed")
		if !fieldNamed(p, "email") {
			t.Errorf("errors = %+v, want email named", p.Errors)
		}

		var got httpapi.UserJSON
		send(t, srv, nil, request{method: "PATCH", path: "/v1/users/me", bearer: s.access,
			json: map[string]string{"email": "Moved@Test.Example", "current_password": latchkeytest.DefaultPassword}}).
			decode(t, http.StatusOK, &got)
		if got.Email != "moved@test.example" || got.IsVerified {
			t.Errorf("patched = %+v, want moved@test.example, unverified", got)
		}
		signIn(t, srv, "moved@test.example", latchkeytest.DefaultPassword)
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/login",
			json: map[string]string{"email": u.Email, "password": latchkeytest.DefaultPassword}}).
			problem(t, http.StatusUnauthorized, "invalid_credentials")
	})

	t.Run("unauthenticated", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		send(t, srv, nil, request{method: "PATCH", path: "/v1/users/me", json: map[string]string{"full_name": "x"}}).
			problem(t, http.StatusUnauthorized, "not_authenticated")
	})
}
