package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/latchkey-dev/latchkey/internal/pgtest"
)

// spawnServe starts `latchkey serve --addr 127.0.0.1:0 args…` as a
// subprocess of the built binary and returns at once, so that several
// processes can be started together; the function it returns waits for the
// address line and gives the running server. The server's stop sends
// SIGTERM and returns the exit code. A process that outlives binaryDeadline
// is killed, and one still running when the test ends is killed by a
// cleanup, so that a failing test never leaves processes behind or hangs.
func spawnServe(t *testing.T, bin string, env []string, args ...string) (ready func() *server) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Dir, cmd.Env = t.TempDir(), env
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, stdout := &syncBuffer{}, &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.AfterFunc(binaryDeadline, func() { cmd.Process.Kill() })
	first := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		br := bufio.NewReader(pipe)
		line, _ := br.ReadString('\n')
		first <- line
		br.WriteTo(stdout) // the no-users hint, and anything later
	}()
	var once sync.Once
	code := -1
	finish := func(sig os.Signal) int {
		once.Do(func() {
			cmd.Process.Signal(sig)
			<-copied // Wait closes the pipe; read it all first
			cmd.Wait()
			deadline.Stop()
			code = cmd.ProcessState.ExitCode() // -1 if a signal ended it
		})
		return code
	}
	t.Cleanup(func() { finish(os.Kill) })
	return func() *server {
		t.Helper()
		line := <-first
		m := regexp.MustCompile(`^latchkey listening on (http://127\.0\.0\.1:[1-9]\d*)\n$`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("first line of stdout %q; exit %d; stderr:\n%s", line, finish(os.Kill), stderr)
		}
		return &server{url: m[1], stdout: stdout, stderr: stderr, stop: func() int { return finish(syscall.SIGTERM) }}
	}
}

// startServes starts n serve processes at once with the same environment
// and arguments and returns them once all are listening.
func startServes(t *testing.T, n int, bin string, env []string, args ...string) []*server {
	t.Helper()
	ready := make([]func() *server, n)
	for i := range ready {
		ready[i] = spawnServe(t, bin, env, args...)
	}
	srvs := make([]*server, n)
	for i, r := range ready {
		srvs[i] = r()
	}
	return srvs
}

// stopAll stops the servers with SIGTERM and checks that each exits 0.
func stopAll(t *testing.T, srvs []*server) {
	t.Helper()
	for i, s := range srvs {
		if got := s.stop(); got != 0 {
			t.Errorf("instance %d: exit code after SIGTERM: got %d, want 0; stderr:\n%s", i, got, s.stderr)
		}
	}
}

// randomMasterKey is a fresh master key as LATCHKEY_MASTER_KEY takes it.
func randomMasterKey() string {
	k := make([]byte, 32)
	rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// openDB connects to the test database for checks; the connection is closed
// before pgtest drops the database.
func openDB(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryInt(t *testing.T, db *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// problemCode is the code of a problem+json body, or "" for anything else.
func problemCode(body []byte) string {
	var p struct{ Code string }
	json.Unmarshal(body, &p)
	return p.Code
}

// refreshCookieValue is the refresh_token value a response sets, and
// whether it sets one.
func refreshCookieValue(res *http.Response) (string, bool) {
	for _, c := range res.Cookies() {
		if c.Name == "refresh_token" {
			return c.Value, true
		}
	}
	return "", false
}

// send is do with a client of the caller's, for use off the test goroutine:
// it returns an error instead of failing the test.
func send(ctx context.Context, c *http.Client, method, url string, header http.Header, body string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, b, err
}

// TestThreeInstancesOnePostgres is issue 5's acceptance test for many
// instances: three serve processes started together on one fresh
// PostgreSQL database migrate once and agree on keys; 60 clients spread
// over them present one refresh cookie at once and all get the same new
// one, the session advancing exactly one generation; after the grace
// window the old cookie, presented to another instance, ends the session
// on all three.
func TestThreeInstancesOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and starts three servers; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Skip("stops the servers with SIGTERM")
	}
	dbURL := pgtest.URL(t)
	db := openDB(t, dbURL)
	bin := buildBinary(t)
	const grace = 2 * time.Second
	env := append(binaryEnv(), "LATCHKEY_DATABASE_URL="+dbURL, "LATCHKEY_MASTER_KEY="+randomMasterKey())
	srvs := startServes(t, 3, bin, env, "--grace", grace.String())

	// Started together: the migrations were applied once each, one key of
	// each purpose was created, and every instance publishes the same one.
	if got, want := queryInt(t, db, `SELECT count(*) - count(DISTINCT version_id) FROM goose_db_version`), 0; got != want {
		t.Errorf("migrations recorded more than once: got %d duplicates, want %d", got, want)
	}
	if got, want := queryInt(t, db, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`), 2; got < want {
		t.Errorf("migrations applied: got %d, want at least %d", got, want)
	}
	for _, purpose := range []string{"signing", "rotation", "tag"} {
		if got, want := queryInt(t, db, `SELECT count(*) FROM keys WHERE purpose = $1`, purpose), 1; got != want {
			t.Errorf("%s keys after three concurrent starts: got %d, want %d", purpose, got, want)
		}
	}
	kid := jwksKeyID(t, srvs[0].url)
	for i, s := range srvs[1:] {
		if got := jwksKeyID(t, s.url); got != kid {
			t.Errorf("instance %d publishes key %s, instance 0 publishes %s", i+1, got, kid)
		}
	}

	// Register and sign in (cookie mode) through instance 0.
	const ua, deviceID = "multi-instance-test/1.0", "device-3f9a"
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	if res, body := do(t, http.MethodPost, srvs[0].url+"/v1/users", jsonHeader,
		`{"email":"multi@example.com","password":"`+strongPassword+`","full_name":"Multi"}`); res.StatusCode != http.StatusCreated {
		t.Fatalf("register: got %s %s, want 201", res.Status, body)
	}
	clientHeader := http.Header{"User-Agent": {ua}, "X-Device-Id": {deviceID}}
	h := clientHeader.Clone()
	h.Set("Content-Type", "application/json")
	res, body := do(t, http.MethodPost, srvs[0].url+"/v1/auth/login", h,
		`{"email":"multi@example.com","password":"`+strongPassword+`"}`)
	oldCookie, ok := refreshCookieValue(res)
	var login struct {
		AccessToken string `json:"access_token"`
	}
	if res.StatusCode != http.StatusOK || !ok || !strings.HasPrefix(oldCookie, "lkr_") || json.Unmarshal(body, &login) != nil || login.AccessToken == "" {
		t.Fatalf("login: got %s, cookie %q, body %s; want 200, a refresh_token cookie and an access token", res.Status, oldCookie, body)
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	// The access token signed by instance 0 is accepted by all three.
	for i, s := range srvs {
		if res, body := do(t, http.MethodGet, s.url+"/v1/auth/me", bearer(login.AccessToken), ""); res.StatusCode != http.StatusOK {
			t.Fatalf("instance %d: GET /v1/auth/me with the login's access token: got %s %s, want 200", i, res.Status, body)
		}
	}

	// 60 clients, round-robin over the instances, each on its own
	// connection (opened before the barrier), present the cookie at once.
	const clients = 60
	type result struct {
		status int
		cookie string
		access string
		body   string
		err    error
	}
	results := make([]result, clients)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	refreshHeader := clientHeader.Clone()
	refreshHeader.Set("Cookie", "refresh_token="+oldCookie)
	for i := range clients {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: time.Minute}
			base := srvs[i%len(srvs)].url
			// Warm the connection so that the refreshes start together.
			_, _, err := send(t.Context(), c, http.MethodGet, base+"/health", nil, "")
			ready.Done()
			<-start
			if err != nil {
				results[i].err = err
				return
			}
			res, body, err := send(t.Context(), c, http.MethodPost, base+"/v1/auth/refresh", refreshHeader, "")
			if err != nil {
				results[i].err = err
				return
			}
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			json.Unmarshal(body, &tok)
			cookie, _ := refreshCookieValue(res)
			results[i] = result{status: res.StatusCode, cookie: cookie, access: tok.AccessToken, body: string(body)}
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	// Every rotation happened before this instant: the grace window is
	// counted from here.
	rotatedBy := time.Now()

	// Tallied, so that a failure reads as one line: how many answered what,
	// and which distinct cookies the successful ones set.
	answers := map[string]int{}
	cookies := map[string]int{}
	for _, r := range results {
		switch {
		case r.err != nil:
			answers["error: "+r.err.Error()]++
		case r.status != http.StatusOK:
			answers[fmt.Sprint(r.status, " ", problemCode([]byte(r.body)))]++
		default:
			answers["200"]++
			cookies[r.cookie]++
		}
	}
	if got, want := fmt.Sprint(answers), fmt.Sprint(map[string]int{"200": clients}); got != want {
		t.Errorf("answers to %d concurrent refreshes over %d instances: got %s, want %s", clients, len(srvs), got, want)
	}
	var newCookie string
	for c := range cookies {
		newCookie = c
	}
	if got, want := len(cookies), 1; got != want {
		t.Errorf("distinct refresh_token cookies set by the 200 answers: got %d, want %d: %v", got, want, cookies)
	}
	if newCookie == "" || newCookie == oldCookie {
		t.Errorf("new cookie %q: want a refresh_token different from the old %q", newCookie, oldCookie)
	}
	rows, err := db.Query(t.Context(), `SELECT generation FROM sessions`)
	if err != nil {
		t.Fatal(err)
	}
	gens, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(gens), "[1]"; got != want {
		t.Errorf("session generations after %d concurrent refreshes: got %s, want %s", clients, got, want)
	}
	if got, want := queryInt(t, db, `SELECT count(*) FROM security_events WHERE kind = 'grace_answer'`), clients-1; got != want {
		t.Errorf("grace_answer events: got %d, want %d (one rotation, the others answered within the grace window)", got, want)
	}
	if t.Failed() {
		// The engine's reasons, for whoever reads the failure.
		rows, err := db.Query(t.Context(), `SELECT detail FROM security_events WHERE kind = 'reuse_detected' ORDER BY id`)
		if err == nil {
			details, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			t.Logf("reuse_detected events: %q", details)
		}
		t.FailNow()
	}

	// After the grace window, the old cookie at another instance than the
	// login's (which one rotated is not observable; all are equal) is
	// reuse: the session ends.
	time.Sleep(time.Until(rotatedBy.Add(grace + 250*time.Millisecond)))
	h = clientHeader.Clone()
	h.Set("Cookie", "refresh_token="+oldCookie)
	res, body = do(t, http.MethodPost, srvs[1].url+"/v1/auth/refresh", h, "")
	if got, want := fmt.Sprint(res.StatusCode, " ", problemCode(body)), "401 token_reused"; got != want {
		t.Errorf("old cookie after the grace window at instance 1: got %s (%s), want %s", got, body, want)
	}
	if got, want := queryInt(t, db, `SELECT count(*) FROM sessions WHERE revoke_reason = 'reuse_detected' AND revoked_at IS NOT NULL`), 1; got != want {
		t.Errorf("sessions revoked for reuse: got %d, want %d", got, want)
	}

	// The session is over on every instance: the newest cookie and the
	// access tokens issued before are refused.
	h.Set("Cookie", "refresh_token="+newCookie)
	for i, s := range srvs {
		res, body := do(t, http.MethodPost, s.url+"/v1/auth/refresh", h, "")
		if got, want := fmt.Sprint(res.StatusCode, " ", problemCode(body)), "401 token_revoked"; got != want {
			t.Errorf("instance %d: newest cookie after reuse: got %s (%s), want %s", i, got, body, want)
		}
		for _, tok := range []string{login.AccessToken, results[i].access} {
			if res, body := do(t, http.MethodGet, s.url+"/v1/auth/me", bearer(tok), ""); res.StatusCode != http.StatusUnauthorized {
				t.Errorf("instance %d: GET /v1/auth/me with an access token of the ended session: got %s %s, want 401", i, res.Status, body)
			}
		}
	}

	stopAll(t, srvs)
}

// loopbackClient returns an HTTP client whose connections come from a
// random address in 127.0.0.0/8, and that address. Rate limits are keyed by
// client address, and Redis keeps its buckets across test runs and across
// anything else using it at the same time, so a fresh address (with a fresh
// account) keeps other runs' buckets out of the test. Where only 127.0.0.1
// is configured (macOS), the client uses that.
func loopbackClient(t *testing.T) (*http.Client, string) {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	ip := net.IPv4(127, 1+b[0]%254, b[1], 1+b[2]%254)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Logf("cannot use %s as a source address (%v); using 127.0.0.1", ip, err)
		return &http.Client{Timeout: time.Minute}, "127.0.0.1"
	}
	ln.Close()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}, ip.String()
}

// signInAttempt makes one wrong-password sign-in and returns the status,
// the problem code and the Retry-After header.
func signInAttempt(t *testing.T, c *http.Client, base, email string) (status int, code, retryAfter string) {
	t.Helper()
	res, body, err := send(t.Context(), c, http.MethodPost, base+"/v1/auth/login",
		http.Header{"Content-Type": {"application/json"}},
		`{"email":"`+email+`","password":"not-the-password-at-all"}`)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, problemCode(body), res.Header.Get("Retry-After")
}

// checkSharedLimit makes wrong-password sign-ins for email, alternating
// between the instances, and checks that the first allowed of them answer
// 401 and the next len(srvs) answer 429 with Retry-After, each instance
// having refused one on the per-account limit.
func checkSharedLimit(t *testing.T, c *http.Client, srvs []*server, email string, allowed int) {
	t.Helper()
	for i := range allowed + len(srvs) {
		n := i % len(srvs)
		status, code, retry := signInAttempt(t, c, srvs[n].url, email)
		if i < allowed {
			if got, want := fmt.Sprint(status, " ", code), "401 invalid_credentials"; got != want {
				t.Fatalf("attempt %d (instance %d): got %s, want %s", i+1, n, got, want)
			}
			continue
		}
		if got, want := fmt.Sprint(status, " ", code), "429 rate_limited"; got != want {
			t.Fatalf("attempt %d (instance %d): got %s, want %s", i+1, n, got, want)
		}
		if s, err := strconv.Atoi(retry); err != nil || s < 1 {
			t.Errorf("attempt %d (instance %d): Retry-After %q, want a positive number of seconds", i+1, n, retry)
		}
	}
	// The refusals came from the per-(account, IP) limit, not another one.
	for n, s := range srvs {
		res, body := get(t, s.url+"/metrics")
		if want := `latchkey_rate_limited_total{limit="login_account"} 1`; res.StatusCode != http.StatusOK || !strings.Contains(string(body), want+"\n") {
			t.Errorf("instance %d: /metrics has no line %q:\n%s", n, want, grepLines(string(body), "latchkey_rate_limited_total"))
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// TestSharedLoginLimitAcrossInstances is issue 5's acceptance test for
// shared rate limits: with Redis, wrong-password sign-ins for one account
// alternating between two instances are refused after 10 in all (the
// per-account burst); the control, two instances on the same database
// without Redis, lets 10 through on each.
func TestSharedLoginLimitAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and starts four servers; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Skip("stops the servers with SIGTERM")
	}
	redisURL := os.Getenv("LATCHKEY_TEST_REDIS_URL")
	if redisURL == "" {
		t.Skip("LATCHKEY_TEST_REDIS_URL not set; skipping the shared rate limit test")
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("LATCHKEY_TEST_REDIS_URL: %v", err)
	}
	rc := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	err = rc.Ping(ctx).Err()
	cancel()
	rc.Close()
	if err != nil {
		t.Fatalf("LATCHKEY_TEST_REDIS_URL is set but Redis does not answer: %v", err)
	}
	dbURL := pgtest.URL(t)
	bin := buildBinary(t)

	// All four start together: two sharing Redis, two (the control) with
	// in-process limits.
	env := append(binaryEnv(), "LATCHKEY_DATABASE_URL="+dbURL, "LATCHKEY_MASTER_KEY="+randomMasterKey())
	ready := make([]func() *server, 4)
	for i := range ready {
		var args []string
		if i < 2 {
			args = []string{"--redis-url", redisURL}
		}
		ready[i] = spawnServe(t, bin, env, args...)
	}
	all := make([]*server, len(ready))
	for i, r := range ready {
		all[i] = r()
	}
	shared, local := all[:2], all[2:]

	// A fresh account and a fresh client address, so that no bucket left in
	// Redis by an earlier run applies. Registered through the control, which
	// keeps Redis out of it.
	email := "limit-" + func() string { b := make([]byte, 8); rand.Read(b); return hex.EncodeToString(b) }() + "@example.com"
	c, ip := loopbackClient(t)
	res, body, err := send(t.Context(), c, http.MethodPost, local[0].url+"/v1/users", http.Header{"Content-Type": {"application/json"}},
		`{"email":"`+email+`","password":"`+strongPassword+`","full_name":"Limited"}`)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("register %s: got %s %s, want 201", email, res.Status, body)
	}
	t.Logf("account %s, client address %s", email, ip)

	limit := 10 // httpapi.DefaultLimits.LoginPerAccount.Burst
	t.Run("redis", func(t *testing.T) { checkSharedLimit(t, c, shared, email, limit) })
	t.Run("in-process", func(t *testing.T) { checkSharedLimit(t, c, local, email, limit*len(local)) })

	stopAll(t, all)
}
