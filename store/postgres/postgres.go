// Package postgres is the PostgreSQL store of Latchkey, on pgx/v5's
// connection pool. Any number of stateless server instances can share one
// database: every rotation, revocation and grace answer is a single
// conditional statement whose correctness rests on PostgreSQL's row locks and
// unique constraints, never on a lock in the process, a single writer or a
// cache. Nothing here needs more than READ COMMITTED, and nothing uses
// advisory locks, LISTEN/NOTIFY or other features that PostgreSQL-compatible
// distributed databases lack (DESIGN.md, "Storage").
//
// docs/POSTGRES.md explains why each operation is correct under READ
// COMMITTED and shows the query plans of the hot paths.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/latchkey-dev/latchkey"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the embedded goose migrations.
func Migrations() embed.FS { return migrations }

var _ latchkey.Store = (*Store)(nil)

// Store is a latchkey.Store on a PostgreSQL database. A Store returned by
// Open is safe for concurrent use; the Store handed to an InTx callback is
// bound to that transaction and, like the transaction, must not be used from
// more than one goroutine at a time.
type Store struct {
	pool *pgxpool.Pool
	tx   pgx.Tx // nil unless the Store is bound to a transaction
}

// Options configure Open.
type Options struct {
	// SkipMigrations opens the database without applying the embedded
	// migrations (for `serve --migrate=false`).
	SkipMigrations bool
	// MaxConns bounds the connection pool. Zero keeps the URL's
	// pool_max_conns, or pgxpool's default of max(4, number of CPUs).
	MaxConns int32
}

// Open connects to the database at databaseURL (a postgres:// URL or a
// libpq keyword/value string, with pgxpool's pool_* parameters) and applies
// the embedded migrations unless opts.SkipMigrations is set. Instances that
// open one database at once migrate it once: goose takes a table-based lock
// (see Migrate).
//
// Commits are durable: unless the URL sets synchronous_commit itself, the
// pool's connections run with synchronous_commit=on, whatever default the
// server or the role has, because a revocation must never be lost once it
// is acknowledged (DESIGN.md, "Durability").
func Open(ctx context.Context, databaseURL string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if pce := (*pgconn.ParseConfigError)(nil); errors.As(err, &pce) {
		// pgx quotes the connection string, redacting the password only as
		// far as it can tell where a malformed one ends.
		return nil, errors.New("postgres: invalid database URL")
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: invalid database URL: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	params := cfg.ConnConfig.RuntimeParams
	if _, ok := params["synchronous_commit"]; !ok {
		params["synchronous_commit"] = "on"
	}
	if _, ok := params["application_name"]; !ok {
		params["application_name"] = "latchkey"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", cfg.ConnConfig.Database, err)
	}
	s := &Store{pool: pool}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", cfg.ConnConfig.Database, err)
	}
	if !opts.SkipMigrations {
		if err := s.Migrate(ctx); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return s, nil
}

// Pool returns the connection pool, for tests and tools that need raw SQL.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool. It is a no-op on a transaction's Store.
func (s *Store) Close() error {
	if s.tx == nil {
		s.pool.Close()
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Now implements latchkey.Store with the database server's clock.
// clock_timestamp(), not now(): now() is the start of the current
// transaction, which on a transaction's Store may be long past.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := s.q().QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("postgres: now: %w", err)
	}
	return t.UTC(), nil
}

// querier is what a pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// q returns where statements go: the transaction, or the pool.
func (s *Store) q() querier {
	if s.tx != nil {
		return s.tx
	}
	return s.pool
}

// write runs a statement that changes data. Outside a transaction it is
// retried when PostgreSQL aborted it for a deadlock or a serialization
// failure (which undo it entirely); inside one, the error goes up to InTx,
// which retries the whole transaction.
func (s *Store) write(ctx context.Context, fn func(q querier) error) error {
	if s.tx != nil {
		return fn(s.tx)
	}
	return retry(ctx, func() error { return fn(s.pool) })
}

// InTx implements latchkey.Store: it runs fn in one READ COMMITTED
// transaction and commits if fn returns nil. Calling it on a transaction's
// Store runs fn in that transaction.
//
// READ COMMITTED is enough for every transaction the engine makes today:
// each is a few conditional single-row writes (a revocation WHERE
// revoked_at IS NULL, a user update by primary key) and appends, and each
// of those writes locks its rows and re-checks its WHERE clause against the
// newest committed version before changing them, so no decision rests on a
// stale snapshot. The transaction gives atomicity (a revocation and its
// event together) and durability, not isolation. A caller that reads and
// then writes on what it read would need REPEATABLE READ or SERIALIZABLE,
// which inTx takes as a parameter.
//
// A transaction that PostgreSQL aborts for a serialization failure (40001)
// or a deadlock (40P01) is rolled back and fn runs again, up to five times
// in all, with a short randomised backoff: the Store contract requires fn
// to do nothing but store calls, so running it again is safe.
//
// The commit is durable before InTx returns: Open sets
// synchronous_commit=on, so COMMIT answers only once the commit record is
// flushed to the WAL (and, with synchronous standbys configured, to them).
func (s *Store) InTx(ctx context.Context, fn func(tx latchkey.Store) error) error {
	return s.inTx(ctx, pgx.ReadCommitted, fn)
}

// inTx is InTx at isolation level iso.
func (s *Store) inTx(ctx context.Context, iso pgx.TxIsoLevel, fn func(tx latchkey.Store) error) error {
	if s.tx != nil {
		return fn(s)
	}
	return retry(ctx, func() error {
		tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: iso})
		if err != nil {
			return fmt.Errorf("postgres: begin: %w", err)
		}
		if err := fn(&Store{pool: s.pool, tx: tx}); err != nil {
			// Roll back even if ctx is cancelled, so that the connection
			// goes back to the pool clean.
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("postgres: commit: %w", err)
		}
		return nil
	})
}

// maxAttempts bounds how often retry runs fn. Under READ COMMITTED
// PostgreSQL raises no serialization failures, and a deadlock needs two
// multi-row writes locking shared rows in opposite orders (a key revocation
// scanning sessions by table order while a logout-all walks the same
// user's sessions by index, say), which is rare; a PostgreSQL-compatible
// distributed database may abort more often. Retrying more than a few
// times would only hide a bug.
const maxAttempts = 5

// retry runs fn until it succeeds, fails for a reason other than a
// serialization failure or a deadlock, or has run maxAttempts times.
func retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == maxAttempts || !retryable(err) {
			return err
		}
		// 2, 4, 8, 16 ms plus jitter, so that the transactions that
		// collided do not collide again in step.
		backoff := time.Duration(1<<attempt)*time.Millisecond + rand.N(2*time.Millisecond)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
	}
}

// SQLSTATE codes the store acts on.
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// retryable reports whether PostgreSQL rolled the statement or transaction
// back for a reason that running it again can cure.
func retryable(err error) bool {
	c := sqlState(err)
	return c == codeSerializationFailure || c == codeDeadlockDetected
}

// noRows maps pgx.ErrNoRows to latchkey.ErrNotFound.
func noRows(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return latchkey.ErrNotFound
	}
	return err
}

// nullTime stores the zero time as NULL, as the SQLite store does.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// fromNull reads a nullable timestamptz; pgx returns local times, the store
// returns UTC like the SQLite store.
func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}
