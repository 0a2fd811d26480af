package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/httpapi"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

func TestAdminAsNormalUser(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t)
	_, s := newSignedInUser(t, srv)
	victim := latchkeytest.NewUser(t, srv.Engine)
	id := "/v1/admin/users/" + victim.ID.String()
	calls := []request{
		{method: "GET", path: "/v1/admin/users"},
		{method: "POST", path: "/v1/admin/users", json: map[string]string{"email": "x@test.example", "password": strongPassword}},
		{method: "GET", path: id},
		{method: "PATCH", path: id, json: map[string]any{"role": "admin"}},
		{method: "DELETE", path: id},
	}
	for _, rq := range calls {
		t.Run(rq.method+" "+rq.path, func(t *testing.T) {
			rq.bearer = s.access
			send(t, srv, nil, rq).problem(t, http.StatusForbidden, "forbidden")
			rq.bearer = ""
			send(t, srv, nil, rq).problem(t, http.StatusUnauthorized, "not_authenticated")
		})
	}
	// Nothing changed.
	u, err := srv.Engine.User(t.Context(), victim.ID)
	if err != nil || u.Role != latchkey.RoleUser {
		t.Errorf("victim after refused admin calls = %+v, %v; want an ordinary user", u, err)
	}
}

func TestAdminListUsers(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t)
	admin, s := newSignedInUser(t, srv, latchkeytest.Admin(), latchkeytest.Email("admin@corp.example"))
	var emails []string
	for i := range 5 {
		u := latchkeytest.NewUser(t, srv.Engine, latchkeytest.Email(fmt.Sprintf("person%d@test.example", i)))
		emails = append(emails, u.Email)
	}

	list := func(t *testing.T, query string) httpapi.UserPage {
		t.Helper()
		var p httpapi.UserPage
		send(t, srv, nil, request{method: "GET", path: "/v1/admin/users" + query, bearer: s.access}).decode(t, http.StatusOK, &p)
		return p
	}

	all := list(t, "")
	if all.Total != 6 || len(all.Items) != 6 || all.Page != 1 {
		t.Fatalf("list = total %d, %d items, page %d; want 6, 6, 1", all.Total, len(all.Items), all.Page)
	}
	if all.Items[0].ID != admin.ID {
		t.Errorf("first user = %s, want the oldest (%s)", all.Items[0].Email, admin.Email)
	}

	page := list(t, "?page=2&size=2")
	if page.Total != 6 || page.Page != 2 || page.Size != 2 || len(page.Items) != 2 {
		t.Fatalf("page 2 = %+v, want 2 of 6 on page 2", page)
	}
	if page.Items[0].Email != emails[1] || page.Items[1].Email != emails[2] {
		t.Errorf("page 2 = %s, %s; want %s, %s", page.Items[0].Email, page.Items[1].Email, emails[1], emails[2])
	}
	if last := list(t, "?page=4&size=2"); len(last.Items) != 0 || last.Total != 6 {
		t.Errorf("page past the end = %+v, want no items, total 6", last)
	}

	found := list(t, "?email=PERSON3")
	if found.Total != 1 || len(found.Items) != 1 || found.Items[0].Email != "person3@test.example" {
		t.Errorf("search person3 = %+v, want person3@test.example only", found)
	}
	if found := list(t, "?email=test.example&size=3"); found.Total != 5 || len(found.Items) != 3 {
		t.Errorf("search test.example = total %d, %d items; want 5, 3", found.Total, len(found.Items))
	}

	for _, q := range []string{"?page=0", "?size=0", "?size=201", "?page=x"} {
		send(t, srv, nil, request{method: "GET", path: "/v1/admin/users" + q, bearer: s.access}).
			problem(t, http.StatusUnprocessableEntity, "validation_failed")
	}
}

func TestAdminCreateGetDelete(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.NewServer(t)
	_, s := newSignedInUser(t, srv, latchkeytest.Admin())

	var created httpapi.UserJSON
	r := send(t, srv, nil, request{method: "POST", path: "/v1/admin/users", bearer: s.access,
		json: map[string]any{"email": "Staff@Test.Example", "password": strongPassword, "full_name": "Staff",
			"role": "admin", "is_verified": true}})
	r.decode(t, http.StatusCreated, &created)
	if created.Email != "staff@test.example" || created.Role != latchkey.RoleAdmin || !created.IsVerified || !created.IsActive {
		t.Errorf("created = %s, want staff@test.example, admin, verified, active", r.body)
	}
	if got, want := r.header.Get("Location"), "/v1/admin/users/"+created.ID.String(); got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	signIn(t, srv, "staff@test.example", strongPassword)

	var plain httpapi.UserJSON
	send(t, srv, nil, request{method: "POST", path: "/v1/admin/users", bearer: s.access,
		json: map[string]any{"email": "plain@test.example", "password": strongPassword}}).decode(t, http.StatusCreated, &plain)
	if plain.Role != latchkey.RoleUser {
		t.Errorf("role without one asked = %q, want user", plain.Role)
	}

	send(t, srv, nil, request{method: "POST", path: "/v1/admin/users", bearer: s.access,
		json: map[string]any{"email": "staff@test.example", "password": strongPassword}}).problem(t, http.StatusConflict, "email_taken")
	p := send(t, srv, nil, request{method: "POST", path: "/v1/admin/users", bearer: s.access,
		json: map[string]any{"email": "x@test.example", "password": strongPassword, "role": "root"}}).
		problem(t, http.StatusUnprocessableEntity, "validation_failed")
	if !fieldNamed(p, "role") {
		t.Errorf("errors = %+v, want role named", p.Errors)
	}
	p = send(t, srv, nil, request{method: "POST", path: "/v1/admin/users", bearer: s.access,
		json: map[string]any{"email": "x@test.example", "password": "short"}}).
		problem(t, http.StatusUnprocessableEntity, "validation_failed")
	if !fieldNamed(p, "password") {
		t.Errorf("errors = %+v, want password named", p.Errors)
	}

	var got httpapi.UserJSON
	send(t, srv, nil, request{method: "GET", path: "/v1/admin/users/" + created.ID.String(), bearer: s.access}).
		decode(t, http.StatusOK, &got)
	if got.ID != created.ID || got.Email != created.Email {
		t.Errorf("get = %+v, want %+v", got, created)
	}
	send(t, srv, nil, request{method: "GET", path: "/v1/admin/users/" + uuid.NewString(), bearer: s.access}).
		problem(t, http.StatusNotFound, "not_found")
	send(t, srv, nil, request{method: "GET", path: "/v1/admin/users/xyz", bearer: s.access}).
		problem(t, http.StatusUnprocessableEntity, "validation_failed")

	// Deleting a user ends its sessions and frees its email.
	doomed := signIn(t, srv, "plain@test.example", strongPassword)
	send(t, srv, nil, request{method: "DELETE", path: "/v1/admin/users/" + plain.ID.String(), bearer: s.access}).
		want(t, http.StatusNoContent)
	send(t, srv, nil, request{method: "GET", path: "/v1/admin/users/" + plain.ID.String(), bearer: s.access}).
		problem(t, http.StatusNotFound, "not_found")
	send(t, srv, nil, request{method: "DELETE", path: "/v1/admin/users/" + plain.ID.String(), bearer: s.access}).
		problem(t, http.StatusNotFound, "not_found")
	if r := refresh(t, srv, doomed.refresh, nil); r.status != http.StatusUnauthorized {
		t.Errorf("refresh of a deleted user's session: status %d, want 401", r.status)
	}
	if r := me(t, srv, doomed.access); r.status != http.StatusUnauthorized {
		t.Errorf("access token of a deleted user: status %d, want 401", r.status)
	}
	send(t, srv, nil, request{method: "POST", path: "/v1/auth/login",
		json: map[string]string{"email": "plain@test.example", "password": strongPassword}}).
		problem(t, http.StatusUnauthorized, "invalid_credentials")
	register(t, srv, "plain@test.example", strongPassword, "").want(t, http.StatusCreated)
}

func TestAdminPatchUser(t *testing.T) {
	t.Parallel()

	patch := func(t *testing.T, srv *latchkeytest.Server, access string, id uuid.UUID, body map[string]any) *answer {
		t.Helper()
		return send(t, srv, nil, request{method: "PATCH", path: "/v1/admin/users/" + id.String(), bearer: access, json: body})
	}

	t.Run("name and role", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		_, a := newSignedInUser(t, srv, latchkeytest.Admin())
		u := latchkeytest.NewUser(t, srv.Engine)
		var got httpapi.UserJSON
		patch(t, srv, a.access, u.ID, map[string]any{"full_name": "Promoted Person", "role": "admin"}).decode(t, http.StatusOK, &got)
		if got.FullName != "Promoted Person" || got.Role != latchkey.RoleAdmin || !got.IsActive {
			t.Errorf("patched = %+v, want Promoted Person, admin, active", got)
		}
		// The promotion takes effect at the next sign-in.
		s := signIn(t, srv, u.Email, latchkeytest.DefaultPassword)
		send(t, srv, nil, request{method: "GET", path: "/v1/admin/users", bearer: s.access}).want(t, http.StatusOK)

		p := patch(t, srv, a.access, u.ID, map[string]any{"role": "superuser"}).problem(t, http.StatusUnprocessableEntity, "validation_failed")
		if !fieldNamed(p, "role") {
			t.Errorf("errors = %+v, want role named", p.Errors)
		}
		patch(t, srv, a.access, uuid.New(), map[string]any{"full_name": "x"}).problem(t, http.StatusNotFound, "not_found")
		patch(t, srv, a.access, u.ID, map[string]any{"password": "x"}).problem(t, http.StatusUnprocessableEntity, "malformed_body")
	})

	t.Run("deactivating ends the user's sessions at once", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		_, a := newSignedInUser(t, srv, latchkeytest.Admin())
		u, s := newSignedInUser(t, srv)
		phone := signInMobile(t, srv, u.Email, latchkeytest.DefaultPassword)

		var got httpapi.UserJSON
		patch(t, srv, a.access, u.ID, map[string]any{"is_active": false}).decode(t, http.StatusOK, &got)
		if got.IsActive {
			t.Error("patched user is still active")
		}
		// The access token, not yet expired, is refused at once.
		if r := me(t, srv, s.access); r.status != http.StatusUnauthorized {
			t.Errorf("me after deactivation: status %d, want 401", r.status)
		}
		if r := refresh(t, srv, s.refresh, nil); r.status != http.StatusUnauthorized {
			t.Errorf("refresh after deactivation: status %d, want 401", r.status)
		}
		if r := send(t, srv, nil, request{method: "POST", path: "/v1/auth/refresh-mobile",
			json: map[string]string{"refresh_token": phone.refresh}}); r.status != http.StatusUnauthorized {
			t.Errorf("mobile refresh after deactivation: status %d, want 401", r.status)
		}
		send(t, srv, nil, request{method: "POST", path: "/v1/auth/login",
			json: map[string]string{"email": u.Email, "password": latchkeytest.DefaultPassword}}).
			problem(t, http.StatusUnauthorized, "invalid_credentials")

		// Reactivated, the user signs in again; the old sessions stay ended.
		patch(t, srv, a.access, u.ID, map[string]any{"is_active": true}).decode(t, http.StatusOK, &got)
		if !got.IsActive {
			t.Error("reactivated user is not active")
		}
		signIn(t, srv, u.Email, latchkeytest.DefaultPassword)
		if r := refresh(t, srv, s.refresh, nil); r.status != http.StatusUnauthorized {
			t.Errorf("old session after reactivation: status %d, want 401", r.status)
		}
	})

	t.Run("a demoted admin loses admin access at once", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		_, a := newSignedInUser(t, srv, latchkeytest.Admin())
		b, bs := newSignedInUser(t, srv, latchkeytest.Admin())
		send(t, srv, nil, request{method: "GET", path: "/v1/admin/users", bearer: bs.access}).want(t, http.StatusOK)

		var got httpapi.UserJSON
		patch(t, srv, a.access, b.ID, map[string]any{"role": "user"}).decode(t, http.StatusOK, &got)
		if got.Role != latchkey.RoleUser {
			t.Errorf("role = %q, want user", got.Role)
		}
		// B's access token still carries role admin and has not expired; it
		// must not open the admin endpoints (the role change retires it).
		send(t, srv, nil, request{method: "GET", path: "/v1/admin/users", bearer: bs.access}).
			problem(t, http.StatusUnauthorized, "token_revoked")
		// B's session goes on, as an ordinary user.
		var tr httpapi.TokenResponse
		refresh(t, srv, bs.refresh, nil).decode(t, http.StatusOK, &tr)
		send(t, srv, nil, request{method: "GET", path: "/v1/admin/users", bearer: tr.AccessToken}).
			problem(t, http.StatusForbidden, "forbidden")
		send(t, srv, nil, request{method: "POST", path: "/oauth/introspect", bearer: tr.AccessToken,
			form: map[string][]string{"token": {tr.AccessToken}}}).problem(t, http.StatusForbidden, "forbidden")
		me(t, srv, tr.AccessToken).want(t, http.StatusOK)
	})

	t.Run("admins cannot lock themselves out", func(t *testing.T) {
		t.Parallel()
		srv := latchkeytest.NewServer(t)
		a, s := newSignedInUser(t, srv, latchkeytest.Admin())
		for _, body := range []map[string]any{{"role": "user"}, {"is_active": false}} {
			patch(t, srv, s.access, a.ID, body).problem(t, http.StatusConflict, "self_modification")
		}
		send(t, srv, nil, request{method: "DELETE", path: "/v1/admin/users/" + a.ID.String(), bearer: s.access}).
			problem(t, http.StatusConflict, "self_modification")
		var got httpapi.UserJSON
		patch(t, srv, s.access, a.ID, map[string]any{"full_name": "Still Admin"}).decode(t, http.StatusOK, &got)
		if got.Role != latchkey.RoleAdmin || got.FullName != "Still Admin" {
			t.Errorf("self patch = %+v, want admin renamed Still Admin", got)
		}
	})
}
