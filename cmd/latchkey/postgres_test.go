package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/pgtest"
)

// TestPostgres runs the commands on a fresh PostgreSQL database: the master
// key is required, migrate applies the schema, user create and serve work on
// it.
func TestPostgres(t *testing.T) {
	isolate(t)
	url := pgtest.URL(t)

	code, _, stderr := runCLI(t, t.Context(), map[string]string{"LATCHKEY_DATABASE_URL": url}, "serve", "--addr", "127.0.0.1:0")
	if code != 2 || !strings.Contains(stderr, "needs the master key") {
		t.Fatalf("serve on PostgreSQL without a key: exit %d, stderr %q; want 2 and a line about the key", code, stderr)
	}
	oneLine(t, stderr)

	env := map[string]string{"LATCHKEY_DATABASE_URL": url, "LATCHKEY_MASTER_KEY": testKey}
	code, stdout, stderr := runCLI(t, t.Context(), env, "migrate")
	if code != 0 || !strings.Contains(stdout, "schema version") {
		t.Fatalf("migrate: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	srv := startServe(t, env, "--addr", "127.0.0.1:0")
	code, stdout, stderr = runCLIStdin(t, t.Context(), env, strongPassword+"\n", "user", "create", "--email", "pg@example.com")
	if code != 0 || !strings.Contains(stdout, "pg@example.com") {
		t.Fatalf("user create: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	res, body := do(t, http.MethodPost, srv.url+"/v1/auth/login-mobile", http.Header{"Content-Type": {"application/json"}},
		`{"email":"pg@example.com","password":"`+strongPassword+`"}`)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"refresh_token":"lkr_`) {
		t.Fatalf("login on PostgreSQL: %s %s", res.Status, body)
	}
	res, body = do(t, http.MethodGet, srv.url+"/health/ready", nil, "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/health/ready on PostgreSQL: %s %s", res.Status, body)
	}
	if code := srv.stop(); code != 0 {
		t.Fatalf("serve exit %d; stderr:\n%s", code, srv.stderr)
	}
}
