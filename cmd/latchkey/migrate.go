package main

import (
	"context"
	"fmt"
)

func migrateCommand() *command {
	return &command{
		name:    "migrate",
		summary: "apply database migrations and print the schema version",
		help: `Apply the database migrations built into this binary that the database
lacks, then print the schema version it is at. Running it again is
harmless. serve does the same on start unless --migrate=false; run migrate
yourself to upgrade the schema in a separate deployment step. No master key
is needed.`,
		options: []option{databaseOption},
		run:     runMigrate,
	}
}

func runMigrate(ctx context.Context, m *Main, s *settings) error {
	db, err := parseDatabaseURL(s.lookup("database-url"))
	if err != nil {
		return err
	}
	// Open without migrating, so that the version before and after can be
	// told apart.
	store, err := openStore(ctx, db, true)
	if err != nil {
		return err
	}
	m.onClose(store.Close)
	before, _, err := store.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	after, _, err := store.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	if after == before {
		fmt.Fprintf(m.Stdout, "latchkey migrate: %s is at schema version %d (up to date)\n", db.name(), after)
	} else {
		fmt.Fprintf(m.Stdout, "latchkey migrate: %s is at schema version %d (was %d)\n", db.name(), after, before)
	}
	return nil
}
