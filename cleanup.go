package latchkey

import (
	"context"
	"fmt"
)

// CleanupProgress reports Cleanup's running totals after each batch.
type CleanupProgress struct {
	SessionsDeleted int
	EventsDeleted   int
}

// Cleanup deletes, in batches of Config.CleanupBatch rows, the sessions
// whose absolute deadline passed more than Config.SessionRetention ago
// (revoked and expired sessions are kept until then, so that a reused token
// is still recognised) and the security events older than
// Config.EventRetention. Each batch is its own short statement, so locks are
// held briefly. progress, if not nil, is called after every batch.
func (e *Engine) Cleanup(ctx context.Context, progress func(CleanupProgress)) (CleanupProgress, error) {
	now := e.now()
	var p CleanupProgress
	step := func(del func() (int, error), total *int) error {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			n, err := del()
			if err != nil {
				return err
			}
			*total += n
			if progress != nil && n > 0 {
				progress(p)
			}
			if n < e.cfg.CleanupBatch {
				return nil
			}
		}
	}
	sessionsBefore := now.Add(-e.cfg.SessionRetention)
	if err := step(func() (int, error) {
		return e.store.DeleteSessionsBefore(ctx, sessionsBefore, e.cfg.CleanupBatch)
	}, &p.SessionsDeleted); err != nil {
		return p, fmt.Errorf("latchkey: cleanup sessions: %w", err)
	}
	eventsBefore := now.Add(-e.cfg.EventRetention)
	if err := step(func() (int, error) {
		return e.store.DeleteEventsBefore(ctx, eventsBefore, e.cfg.CleanupBatch)
	}, &p.EventsDeleted); err != nil {
		return p, fmt.Errorf("latchkey: cleanup events: %w", err)
	}
	return p, nil
}
