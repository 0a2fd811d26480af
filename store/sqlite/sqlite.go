// Package sqlite is the embedded SQLite store of Latchkey, on the pure-Go
// modernc.org/sqlite driver (no cgo). One database file in WAL mode holds
// everything; writes go through a single connection so that they queue in
// the process instead of spinning on SQLITE_BUSY, while reads use a pool.
// Correctness does not depend on that single writer: every rotation is a
// conditional write, and other processes on the same file are serialised by
// SQLite's own locks (immediate transactions with a busy timeout).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/latchkey-dev/latchkey"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the embedded goose migrations.
func Migrations() embed.FS { return migrations }

var _ latchkey.Store = (*Store)(nil)

type pools struct {
	w, r *sql.DB
	path string
}

// Store is a latchkey.Store on one SQLite file. A Store returned by Open is
// safe for concurrent use; the Store handed to an InTx callback is bound to
// that transaction.
type Store struct {
	p  *pools
	tx *sql.Tx
}

// Options configure Open.
type Options struct {
	// SkipMigrations opens the database without applying the embedded
	// migrations (for `serve --migrate=false`).
	SkipMigrations bool
	// ReadConns bounds the read pool. Default: 2 × GOMAXPROCS, at least 4.
	ReadConns int
}

// DSN returns the modernc.org/sqlite data source name for the file at path
// with Latchkey's settings: WAL, a busy timeout, foreign keys, immediate
// transactions and synchronous=NORMAL (revoking writes switch to FULL). It
// is built with net/url so that any character in the path, such as '#', is
// escaped.
func DSN(path string, readOnly bool) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("sqlite: path %q: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	}
	q.Set("_txlock", "immediate")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String(), nil
}

// Open opens (creating if needed) the SQLite database at path and applies the
// embedded migrations unless opts.SkipMigrations is set.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	wdsn, err := DSN(path, false)
	if err != nil {
		return nil, err
	}
	// The file holds password hashes and sealed keys: create it readable by
	// its owner only (SQLite gives the -wal and -shm files the same mode).
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	rdsn, _ := DSN(path, true)
	w, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", rdsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := opts.ReadConns
	if n <= 0 {
		n = max(4, 2*runtime.GOMAXPROCS(0))
	}
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s := &Store{p: &pools{w: w, r: r, path: path}}
	if err := w.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if !opts.SkipMigrations {
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Migrate applies the embedded migrations that have not been applied yet.
func (s *Store) Migrate(ctx context.Context) error {
	p, err := s.provider()
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate %s: %w", s.p.path, err)
	}
	return nil
}

// MigrationStatus reports the schema version applied and the newest one
// embedded.
func (s *Store) MigrationStatus(ctx context.Context) (current, latest int64, err error) {
	p, err := s.provider()
	if err != nil {
		return 0, 0, err
	}
	if current, err = p.GetDBVersion(ctx); err != nil {
		return 0, 0, fmt.Errorf("sqlite: schema version: %w", err)
	}
	srcs := p.ListSources()
	if len(srcs) > 0 {
		latest = srcs[len(srcs)-1].Version
	}
	return current, latest, nil
}

func (s *Store) provider() (*goose.Provider, error) {
	p, err := goose.NewProvider(goose.DialectSQLite3, s.p.w, mustSub(migrations, "migrations"),
		goose.WithSessionLocker(tableLocker{}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrations: %w", err)
	}
	return p, nil
}

// DB returns the write connection pool, for tests and tools that need raw
// SQL (counting rows, simulating a lost commit).
func (s *Store) DB() *sql.DB { return s.p.w }

// Path returns the database file's path.
func (s *Store) Path() string { return s.p.path }

// Close closes both pools. It is a no-op on a transaction's Store.
func (s *Store) Close() error {
	if s.tx != nil {
		return nil
	}
	return errors.Join(s.p.r.Close(), s.p.w.Close())
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.p.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Now implements latchkey.Store with SQLite's view of the clock (the
// machine's, since SQLite is embedded).
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var us int64
	err := s.reader().QueryRowContext(ctx, `SELECT CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)`).Scan(&us)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: now: %w", err)
	}
	return time.UnixMicro(us).UTC(), nil
}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// reader returns where reads go: the transaction, or the read pool.
func (s *Store) reader() querier {
	if s.tx != nil {
		return s.tx
	}
	return s.p.r
}

// writer returns where non-durable writes go: the transaction, or the write
// connection.
func (s *Store) writer() querier {
	if s.tx != nil {
		return s.tx
	}
	return s.p.w
}

// InTx runs fn in an immediate transaction with synchronous=FULL, so that
// its commit (a revocation, typically) survives a power failure. SQLite
// cannot change the synchronous level inside a transaction, so it is set on
// the connection around BEGIN and COMMIT.
func (s *Store) InTx(ctx context.Context, fn func(tx latchkey.Store) error) error {
	if s.tx != nil {
		return fn(s)
	}
	conn, err := s.p.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = FULL"); err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	// Restore NORMAL with a fresh context: the caller's may be cancelled, and
	// the connection returns to the pool either way.
	defer conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous = NORMAL")
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	if err := fn(&Store{p: s.p, tx: tx}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// durable runs fn in a durable transaction unless s is already one.
func (s *Store) durable(ctx context.Context, fn func(tx *Store) error) error {
	return s.InTx(ctx, func(tx latchkey.Store) error { return fn(tx.(*Store)) })
}

func isConstraint(err error, code int) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == code
}

func isUnique(err error) bool {
	return isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) || isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// Times are stored as Unix microseconds; the zero time as NULL.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
