package postgres

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvExplainURL names a scratch database for TestExplainHotQueries. The test
// migrates it and, if it has no sessions yet, fills it with
// testdata/bench_seed.sql (a million sessions, half a minute).
const EnvExplainURL = "LATCHKEY_EXPLAIN_POSTGRES_URL"

// TestExplainHotQueries runs EXPLAIN ANALYZE on every statement a request
// or the cleanup job makes on a hot path, exactly as the store sends it, on a
// production-sized table, and fails if any plan scans a whole table. The
// plans are logged; docs/POSTGRES.md shows them.
//
// pgx prepares each statement once per connection, and after a few runs
// PostgreSQL may switch a prepared statement to a generic plan that ignores
// the parameter values, so the plans checked here are the generic ones
// (plan_cache_mode = force_generic_plan): the worst case of both.
func TestExplainHotQueries(t *testing.T) {
	dbURL := os.Getenv(EnvExplainURL)
	if dbURL == "" {
		t.Skip(EnvExplainURL + " not set; skipping the query plan check")
	}
	ctx := t.Context()
	s, err := Open(ctx, dbURL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var sessions int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM sessions`).Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	if sessions == 0 {
		start := time.Now()
		seed(t, s.pool)
		t.Logf("seeded in %v", time.Since(start).Round(time.Second))
	}

	// A live session, its user, the revocation feed a day back and the
	// cleanup cut-off now: the parameters of an ordinary day.
	var (
		sid, uid, feedID uuid.UUID
		gen              int64
		hash             []byte
		mode, keyID      string
		email            string
		dbNow, feedAt    time.Time
	)
	err = s.pool.QueryRow(ctx, `SELECT s.id, s.user_id, s.generation, s.current_hash, s.mode, s.rotation_key_id,
			u.email, now()
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.revoked_at IS NULL AND s.idle_deadline > now() AND s.absolute_deadline > now() AND u.is_active
		LIMIT 1`).
		Scan(&sid, &uid, &gen, &hash, &mode, &keyID, &email, &dbNow)
	if err != nil {
		t.Fatal(err)
	}
	err = s.pool.QueryRow(ctx, `SELECT revoked_at, id FROM sessions WHERE revoked_at > now() - interval '1 day'
		ORDER BY revoked_at, id LIMIT 1`).Scan(&feedAt, &feedID)
	if err != nil {
		t.Fatal(err)
	}
	newHash := make([]byte, 32)

	queries := []struct {
		name  string
		sql   string
		args  []any
		write bool
	}{
		{"RotateSession", rotateCurrentSQL, []any{gen + 1, newHash, newHash, dbNow, "Mozilla/5.0 (bench)", "device-1",
			dbNow.Add(7 * 24 * time.Hour), sid, gen, hash, mode, keyID}, true},
		{"RecordGraceAnswer", graceSQL, []any{sid, gen, hash, dbNow, "grace_answer", "198.51.100.1",
			"Mozilla/5.0 (bench)", "generation n-1 answered with n"}, true},
		{"SessionByID", sessionByIDSQL, []any{sid}, false},
		{"ListSessions", listSessionsSQL, []any{uid, dbNow}, false},
		{"UserByEmail", userByEmailSQL, []any{strings.ToUpper(email)}, false},
		{"AuthState", authStateSQL, []any{dbNow, sid, uid}, false},
		{"RevokedSince", revokedSinceSQL, []any{feedAt, feedID, 100}, false},
		{"RevokedSince (first page)", revokedFirstSQL, []any{100}, false},
		{"DeleteSessionsBefore", deleteSessionsSQL, []any{dbNow, 1000}, true},
		{"DeleteEventsBefore", deleteEventsSQL, []any{dbNow.Add(-29 * 24 * time.Hour), 1000}, true},
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `RESET plan_cache_mode`)
	for i, q := range queries {
		name := fmt.Sprintf("explain_%d", i)
		if _, err := conn.Exec(ctx, `PREPARE `+name+` AS `+q.sql); err != nil {
			t.Fatalf("%s: prepare: %v", q.name, err)
		}
		lits := make([]string, len(q.args))
		for j, a := range q.args {
			lits[j] = literal(a)
		}
		// A write is explained (and so run) in a transaction that is
		// rolled back: the data set stays as seeded.
		if _, err := conn.Exec(ctx, `BEGIN`); err != nil {
			t.Fatal(err)
		}
		rows, err := conn.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS OFF) EXECUTE `+name+`(`+strings.Join(lits, ", ")+`)`)
		var plan []string
		if err == nil {
			for rows.Next() {
				var line string
				if err = rows.Scan(&line); err != nil {
					break
				}
				plan = append(plan, line)
			}
			rows.Close()
			err = rows.Err()
		}
		if _, rbErr := conn.Exec(ctx, `ROLLBACK`); rbErr != nil {
			t.Fatal(rbErr)
		}
		conn.Exec(ctx, `DEALLOCATE `+name)
		if err != nil {
			t.Fatalf("%s: explain: %v", q.name, err)
		}
		text := strings.Join(plan, "\n")
		t.Logf("%s:\n%s", q.name, text)
		if strings.Contains(text, "Seq Scan") {
			t.Errorf("%s scans a whole table", q.name)
		}
		if q.write && !regexp.MustCompile(`actual time=\S+ rows=[1-9]`).MatchString(text) {
			t.Errorf("%s changed no rows; the plan shown is not the one that does the work", q.name)
		}
	}
}

// literal renders a parameter as an SQL literal for EXECUTE.
func literal(v any) string {
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	switch v := v.(type) {
	case uuid.UUID:
		return quote(v.String()) + "::uuid"
	case []byte:
		return `'\x` + hex.EncodeToString(v) + `'::bytea`
	case time.Time:
		return quote(v.UTC().Format(time.RFC3339Nano)) + "::timestamptz"
	case string:
		return quote(v)
	case int, int64:
		return fmt.Sprint(v)
	}
	panic(fmt.Sprintf("literal: unsupported %T", v))
}

// seed runs testdata/bench_seed.sql statement by statement on one
// connection (it uses a temporary table, and VACUUM refuses to run inside
// the implicit transaction of a multi-statement query).
func seed(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	script, err := os.ReadFile("testdata/bench_seed.sql")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, stmt := range regexp.MustCompile(`;\s*\n`).Split(string(script), -1) {
		if strings.TrimSpace(stripComments(stmt)) == "" {
			continue
		}
		if _, err := conn.Conn().PgConn().Exec(t.Context(), stmt).ReadAll(); err != nil {
			t.Fatalf("bench_seed.sql: %v\n%s", err, stmt)
		}
	}
}

func stripComments(sql string) string {
	var b strings.Builder
	for line := range strings.Lines(sql) {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
		}
	}
	return b.String()
}
