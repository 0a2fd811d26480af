// Package pgtest gives tests a fresh PostgreSQL database of their own on the
// server named by LATCHKEY_TEST_POSTGRES_URL, so that tests run against a
// real server, in parallel if they like, and never depend on what an
// earlier run left behind.
//
// Without the variable, every helper skips the test. With it, a server that
// cannot be reached fails the test: a CI job that set the variable must not
// pass by skipping.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/latchkey-dev/latchkey/store/postgres"
)

// EnvURL is the variable naming the test server: a URL of a database on it
// that the tests may connect to (postgres is fine) as a role allowed to
// create databases, for example
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
const EnvURL = "LATCHKEY_TEST_POSTGRES_URL"

// Open returns a store on a fresh, migrated database. The store is closed and
// the database dropped when the test ends.
func Open(tb testing.TB) *postgres.Store {
	tb.Helper()
	return OpenWith(tb, postgres.Options{})
}

// OpenWith is Open with options, such as a larger pool.
func OpenWith(tb testing.TB, opts postgres.Options) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(tb.Context(), URL(tb), opts)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	// Registered after URL's cleanup, so it runs first: the store lets go of
	// its connections before the database is dropped.
	tb.Cleanup(func() { s.Close() })
	return s
}

// Require skips tb unless EnvURL is set and fails it if the server cannot be
// reached. A test that runs many subtests calls it first, so that it skips
// (or fails) once rather than in every subtest.
func Require(tb testing.TB) {
	tb.Helper()
	server(tb)
}

// server returns the URL from EnvURL and a pool on that server, skipping or
// failing tb as Require describes.
func server(tb testing.TB) (string, *pgxpool.Pool) {
	tb.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		tb.Skip(EnvURL + " not set; skipping PostgreSQL tests")
	}
	admin, err := adminPool(base)
	if err != nil {
		tb.Fatalf("pgtest: connect to the server in %s: %v", EnvURL, err)
	}
	return base, admin
}

// URL creates an empty database, not migrated, and returns its URL. The
// database is dropped when the test ends, even if connections to it are
// still open.
func URL(tb testing.TB) string {
	tb.Helper()
	base, admin := server(tb)
	name := "latchkey_test_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		// Not tb.Context(): it is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		waitForDisconnects(ctx, admin, name)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := withDatabase(base, name)
	if err != nil {
		tb.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	return u
}

// waitForDisconnects gives the backends of a just-closed pool a moment to
// exit. DROP DATABASE would wait for them too, but it polls every 100 ms,
// which over a hundred subtests adds up to more than the tests themselves.
func waitForDisconnects(ctx context.Context, admin *pgxpool.Pool, name string) {
	for range 200 {
		var n int
		err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, name).Scan(&n)
		if err != nil || n == 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var admin struct {
	once sync.Once
	pool *pgxpool.Pool
	err  error
}

// adminPool connects once per test binary to the server for CREATE and DROP
// DATABASE. It is never closed: the process ends with the tests.
func adminPool(base string) (*pgxpool.Pool, error) {
	admin.once.Do(func() {
		cfg, err := pgxpool.ParseConfig(base)
		if err != nil {
			admin.err = err
			return
		}
		cfg.MaxConns = 4
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err == nil {
			err = pool.Ping(ctx)
		}
		if err != nil {
			admin.err = err
			return
		}
		admin.pool = pool
	})
	return admin.pool, admin.err
}

// withDatabase returns base with its database replaced by name, for both the
// URL and the keyword/value form of a connection string.
func withDatabase(base, name string) (string, error) {
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			return "", err
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// In keyword/value strings a later setting wins.
	if _, err := pgx.ParseConfig(base); err != nil {
		return "", err
	}
	return base + " dbname=" + name, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
