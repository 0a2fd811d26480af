package postgres_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/pgtest"
)

// seedExpired fills the store with one user, n sessions past their absolute
// deadline and n security events past the 90-day retention: all of it is
// cleanup's to delete.
func seedExpired(b *testing.B, pool *pgxpool.Pool, n int) {
	b.Helper()
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO users (id, email, password_hash, full_name, role, is_active, is_verified, token_version, created_at, updated_at)
		 VALUES ('00000000-0000-7000-8000-000000000001', 'bench@example.com', 'x', '', 'user', true, true, 0, now(), now())
		 ON CONFLICT DO NOTHING`,
		`INSERT INTO sessions (id, user_id, mode, generation, current_hash, next_hash, created_at, last_used_at,
		     idle_deadline, absolute_deadline, rotation_key_id)
		 SELECT gen_random_uuid(), '00000000-0000-7000-8000-000000000001', 'cookie', 0,
		     sha256(uuid_send(gen_random_uuid())), sha256(uuid_send(gen_random_uuid())),
		     now() - interval '40 days', now() - interval '40 days', now() - interval '33 days',
		     now() - interval '10 days' + i * interval '1 millisecond', 'rot'
		 FROM generate_series(1, $1) AS i`,
		`INSERT INTO security_events (at, user_id, kind)
		 SELECT now() - interval '100 days' + i * interval '1 millisecond', '00000000-0000-7000-8000-000000000001', 'sign_in'
		 FROM generate_series(1, $1) AS i`,
		`VACUUM ANALYZE sessions`,
		`VACUUM ANALYZE security_events`,
	} {
		args := []any{}
		if strings.Contains(q, "$1") {
			args = append(args, n)
		}
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
}

// BenchmarkCleanup1M measures latchkey cleanup on 1,000,000 expired sessions
// and 1,000,000 old events, in batches of 1,000 rows per statement. The
// baseline, measured in the same run, deletes the same rows with one
// unbatched DELETE per table (what the batching trades for short locks).
// Run with -benchtime=1x; it needs LATCHKEY_TEST_POSTGRES_URL.
func BenchmarkCleanup1M(b *testing.B) {
	const n = 1_000_000
	st := pgtest.Open(b)
	key := make([]byte, latchkey.MasterKeySize)
	rand.Read(key)
	e, err := latchkey.New(b.Context(), st, latchkey.Config{MasterKey: key})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("batched", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			seedExpired(b, st.Pool(), n)
			b.StartTimer()
			p, err := e.Cleanup(b.Context(), nil)
			if err != nil || p.SessionsDeleted != n || p.EventsDeleted != n {
				b.Fatalf("Cleanup = %+v, %v; want %d of each", p, err, n)
			}
		}
		b.ReportMetric(float64(2*n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("baseline-unbatched", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			seedExpired(b, st.Pool(), n)
			b.StartTimer()
			for _, q := range []string{`DELETE FROM sessions WHERE absolute_deadline < now()`,
				`DELETE FROM security_events WHERE at < now() - interval '90 days'`} {
				tag, err := st.Pool().Exec(b.Context(), q)
				if err != nil || tag.RowsAffected() != n {
					b.Fatalf("%s: %v, %d rows", q, err, tag.RowsAffected())
				}
			}
		}
		b.ReportMetric(float64(2*n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}
