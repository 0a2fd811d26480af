package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Migrate applies the embedded migrations that have not been applied yet.
//
// Instances that start together take turns: goose's table-based locker
// claims a row of the goose_lock table (an INSERT … ON CONFLICT … DO UPDATE
// that succeeds for one caller), keeps the lease alive while it migrates and
// releases it afterwards; the others retry every second and then find
// nothing left to do. A lock row, unlike pg_advisory_lock, works on
// PostgreSQL-compatible distributed databases too, and a crashed migrator's
// lease expires after 30 s instead of wedging the next start.
func (s *Store) Migrate(ctx context.Context) error {
	p, db, err := s.provider()
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate %s: %w", s.database(), err)
	}
	return nil
}

// MigrationStatus reports the schema version applied and the newest one
// embedded.
func (s *Store) MigrationStatus(ctx context.Context) (current, latest int64, err error) {
	p, db, err := s.provider()
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	if current, err = p.GetDBVersion(ctx); err != nil {
		return 0, 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	srcs := p.ListSources()
	if len(srcs) > 0 {
		latest = srcs[len(srcs)-1].Version
	}
	return current, latest, nil
}

// Lock timing: a waiting instance polls every second (with jitter) for up
// to five minutes, far longer than these migrations take.
const (
	lockRetryInterval = time.Second
	lockRetries       = 300
)

// provider returns a goose provider over a database/sql handle of its own,
// which the caller closes. It does not borrow from the pool: goose holds one
// connection while its locker works through another, which a pool of one
// connection could never give it.
func (s *Store) provider() (*goose.Provider, *sql.DB, error) {
	locker, err := lock.NewPostgresTableLocker(
		lock.WithTableLockTimeout(lockRetryInterval, lockRetries),
		lock.WithTableRetryPolicy(lockRetryable),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: migration lock: %w", err)
	}
	db := stdlib.OpenDB(*s.pool.Config().ConnConfig)
	p, err := goose.NewProvider(goose.DialectPostgres, db, mustSub(migrations, "migrations"),
		goose.WithLocker(locker),
		// Only the embedded SQL files: never Go migrations that another
		// package may have registered with goose's global registry.
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("postgres: migrations: %w", err)
	}
	return p, db, nil
}

// lockRetryable tells goose's locker which failures to wait out: the lock
// being held by another instance (a plain error from goose) and transient
// database errors, but not, say, a missing privilege, which waiting five
// minutes would not cure.
func lockRetryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return true
	}
	switch pe.Code[:2] {
	case "08", "40", "53", "57": // connection, rollback, resources, operator intervention
		return true
	}
	return false
}

// database names the database in messages, without credentials.
func (s *Store) database() string { return s.pool.Config().ConnConfig.Database }
