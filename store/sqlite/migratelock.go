package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// tableLocker is goose's session locker for SQLite, which goose lacks: a
// one-row table that processes starting together on one file take in turn,
// so that exactly one of them applies each migration. A lock older than
// staleLock (a process that died holding it) is broken.
type tableLocker struct{}

const staleLock = 5 * time.Minute

func (tableLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS latchkey_migration_lock (
		id INTEGER PRIMARY KEY CHECK (id = 1), locked_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: migration lock: %w", err)
	}
	wait := 10 * time.Millisecond
	deadline := time.Now().Add(time.Minute)
	for {
		now := time.Now()
		if _, err := conn.ExecContext(ctx, `DELETE FROM latchkey_migration_lock WHERE locked_at < ?`,
			now.Add(-staleLock).UnixMicro()); err != nil {
			return fmt.Errorf("sqlite: migration lock: %w", err)
		}
		res, err := conn.ExecContext(ctx, `INSERT OR IGNORE INTO latchkey_migration_lock (id, locked_at) VALUES (1, ?)`, now.UnixMicro())
		if err != nil {
			return fmt.Errorf("sqlite: migration lock: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		if now.After(deadline) {
			return fmt.Errorf("sqlite: migration lock: still held by another process after a minute")
		}
		// Another process is migrating; wait for it (with backoff) rather
		// than fail, since it will usually finish in milliseconds.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

func (tableLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, `DELETE FROM latchkey_migration_lock WHERE id = 1`); err != nil {
		return fmt.Errorf("sqlite: migration unlock: %w", err)
	}
	return nil
}
