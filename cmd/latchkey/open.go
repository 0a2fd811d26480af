package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/store/postgres"
	"github.com/latchkey-dev/latchkey/store/sqlite"
)

// masterKey returns the master key given by --master-key-file or
// LATCHKEY_MASTER_KEY and where it came from, or nil when neither is set
// (the database's key file is then used). A key that does not decode is a
// *usageError; the key itself is never in an error.
func masterKey(s *settings) (key []byte, source string, err error) {
	b, source, ok, err := s.secret("master-key-file", "master key file")
	if err != nil || !ok {
		return nil, "", err
	}
	if key, err = decodeMasterKey(string(b)); err != nil {
		if s.set["master-key-file"] {
			return nil, "", usagef("invalid master key file %s: %v; %s", s.string("master-key-file"), err, masterKeyHint)
		}
		return nil, "", usagef("invalid LATCHKEY_MASTER_KEY: %v; %s", err, masterKeyHint)
	}
	return key, source, nil
}

// cliStore is what the commands need of either backend.
type cliStore interface {
	latchkey.Store
	Migrate(ctx context.Context) error
	MigrationStatus(ctx context.Context) (current, latest int64, err error)
}

// openStore opens the store the database URL names, creating a missing
// SQLite file (serve and migrate).
func openStore(ctx context.Context, db database, skipMigrations bool) (cliStore, error) {
	if db.postgres {
		return postgres.Open(ctx, db.url, postgres.Options{SkipMigrations: skipMigrations})
	}
	// The database holds password hashes and the sealed keys: create it
	// readable by its owner only. SQLite gives the -wal and -shm files the
	// database file's mode.
	if f, err := os.OpenFile(db.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	}
	return sqlite.Open(ctx, db.path, sqlite.Options{SkipMigrations: skipMigrations})
}

// engineOptions are the engine settings an administrative command passes on.
type engineOptions struct {
	accessTTL time.Duration // 0: the engine's default
}

// openEngine opens the existing database of an administrative command (user
// create, keys, cleanup) and the engine on it, registering the store to be
// closed by m.Close. Unlike serve it creates nothing: not the database (a
// typo in its path should fail, not make an empty one), not the schema (a
// newer binary run by hand must not migrate a database older servers are
// using) and not the master key file (a new key could not open the keys the
// database already holds; only serve makes one, for a database without keys).
func openEngine(ctx context.Context, m *Main, s *settings, opts engineOptions) (*latchkey.Engine, error) {
	db, err := parseDatabaseURL(s.lookup("database-url"))
	if err != nil {
		return nil, err
	}
	key, keySource, err := masterKey(s)
	if err != nil {
		return nil, err
	}
	if db.postgres && key == nil {
		return nil, usagef("a PostgreSQL database needs the master key: set LATCHKEY_MASTER_KEY or --master-key-file")
	}
	if !db.postgres {
		if _, err := os.Stat(db.path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("database %s does not exist; 'latchkey serve' or 'latchkey migrate' creates it", db.path)
		} else if err != nil {
			return nil, err
		}
	}
	store, err := openStore(ctx, db, true)
	if err != nil {
		return nil, err
	}
	m.onClose(store.Close)
	current, latest, err := store.MigrationStatus(ctx)
	if err != nil {
		return nil, err
	}
	if current < latest {
		return nil, fmt.Errorf("%s is at schema version %d but this build needs %d; run 'latchkey migrate' first", db.name(), current, latest)
	}
	if key == nil {
		path, err := keyFilePath(db.path)
		if err != nil {
			return nil, err
		}
		key, err = readKeyFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no master key: --master-key-file and LATCHKEY_MASTER_KEY are not set and the key file for %s, %s, does not exist "+
				"(only 'latchkey serve' creates one)", db.path, path)
		}
		if err != nil {
			return nil, err
		}
		keySource = "key file " + path
	}
	e, err := latchkey.New(ctx, store, latchkey.Config{MasterKey: key, AccessTTL: opts.accessTTL})
	if errors.Is(err, latchkey.ErrWrongMasterKey) {
		return nil, wrongKeyError(keySource, db.name())
	}
	return e, err
}

// wrongKeyError says that the master key from source does not open the
// database at path.
func wrongKeyError(source, path string) error {
	return fmt.Errorf("the master key from %s cannot decrypt the keys in %s: it is not the key this database was created with", source, path)
}
