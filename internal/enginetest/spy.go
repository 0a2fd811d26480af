package enginetest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
)

// Spy is a latchkey.Store that counts every call and can hold or drop
// rotations. It implements each method by hand, with no embedding, so that a
// method added to the interface fails to compile here instead of slipping past
// the count.
type Spy struct {
	inner latchkey.Store
	st    *spyState
}

type spyState struct {
	calls atomic.Int64
	mu    sync.Mutex
	// beforeRotate, if set, runs before each RotateSession reaches the store.
	beforeRotate func()
	// beforeCreateSession, if set, runs before each CreateSession.
	beforeCreateSession func()
	// beforeInTx, if set, runs before each InTx on the spy itself.
	beforeInTx func()
	// loseRotations makes RotateSession run and then roll back, as if the
	// commit were lost after the client got its answer.
	loseRotations bool
}

var _ latchkey.Store = (*Spy)(nil)

// NewSpy wraps inner.
func NewSpy(inner latchkey.Store) *Spy { return &Spy{inner: inner, st: &spyState{}} }

// Calls returns how many store calls have been made through the spy.
func (s *Spy) Calls() int64 { return s.st.calls.Load() }

// BeforeRotate sets a hook run before every RotateSession.
func (s *Spy) BeforeRotate(f func()) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	s.st.beforeRotate = f
}

// BeforeCreateSession sets a hook run before every CreateSession, to put a
// concurrent change between a sign-in's password check and its insert.
func (s *Spy) BeforeCreateSession(f func()) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	s.st.beforeCreateSession = f
}

// BeforeInTx sets a hook run before every transaction, to put a concurrent
// change between an operation's checks and its write.
func (s *Spy) BeforeInTx(f func()) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	s.st.beforeInTx = f
}

// LoseRotations makes the following rotations roll back after returning their
// result: the database keeps the row's previous state while the client holds
// the new token.
func (s *Spy) LoseRotations(lose bool) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	s.st.loseRotations = lose
}

func (s *Spy) hooks() (func(), bool) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return s.st.beforeRotate, s.st.loseRotations
}

func (s *Spy) count() { s.st.calls.Add(1) }

type errRollback struct{}

func (errRollback) Error() string { return "rollback" }

// InTx implements latchkey.Store; the transaction's store is spied on too.
func (s *Spy) InTx(ctx context.Context, fn func(tx latchkey.Store) error) error {
	s.count()
	s.st.mu.Lock()
	before := s.st.beforeInTx
	s.st.mu.Unlock()
	if before != nil {
		before()
	}
	return s.inner.InTx(ctx, func(tx latchkey.Store) error { return fn(&Spy{inner: tx, st: s.st}) })
}

// CreateUser implements latchkey.Store.
func (s *Spy) CreateUser(ctx context.Context, u *latchkey.User) error {
	s.count()
	return s.inner.CreateUser(ctx, u)
}

// UserByID implements latchkey.Store.
func (s *Spy) UserByID(ctx context.Context, id uuid.UUID) (*latchkey.User, error) {
	s.count()
	return s.inner.UserByID(ctx, id)
}

// UserByEmail implements latchkey.Store.
func (s *Spy) UserByEmail(ctx context.Context, email string) (*latchkey.User, error) {
	s.count()
	return s.inner.UserByEmail(ctx, email)
}

// ListUsers implements latchkey.Store.
func (s *Spy) ListUsers(ctx context.Context, q latchkey.UserQuery) ([]*latchkey.User, int, error) {
	s.count()
	return s.inner.ListUsers(ctx, q)
}

// DeleteUser implements latchkey.Store.
func (s *Spy) DeleteUser(ctx context.Context, id uuid.UUID, now time.Time) error {
	s.count()
	return s.inner.DeleteUser(ctx, id, now)
}

// UpdateUser implements latchkey.Store.
func (s *Spy) UpdateUser(ctx context.Context, id uuid.UUID, p latchkey.UserPatch, now time.Time) (*latchkey.User, error) {
	s.count()
	return s.inner.UpdateUser(ctx, id, p, now)
}

// CreateSession implements latchkey.Store.
func (s *Spy) CreateSession(ctx context.Context, x *latchkey.Session, userVersion int64) error {
	s.count()
	s.st.mu.Lock()
	before := s.st.beforeCreateSession
	s.st.mu.Unlock()
	if before != nil {
		before()
	}
	return s.inner.CreateSession(ctx, x, userVersion)
}

// SessionByID implements latchkey.Store.
func (s *Spy) SessionByID(ctx context.Context, id uuid.UUID) (*latchkey.Session, error) {
	s.count()
	return s.inner.SessionByID(ctx, id)
}

// RotateSession implements latchkey.Store, running the hooks.
func (s *Spy) RotateSession(ctx context.Context, r latchkey.Rotation) (*latchkey.Rotated, error) {
	s.count()
	before, lose := s.hooks()
	if before != nil {
		before()
	}
	if !lose {
		return s.inner.RotateSession(ctx, r)
	}
	var out *latchkey.Rotated
	err := s.inner.InTx(ctx, func(tx latchkey.Store) error {
		var err error
		if out, err = tx.RotateSession(ctx, r); err != nil {
			return err
		}
		return errRollback{}
	})
	if _, ok := err.(errRollback); ok {
		return out, nil
	}
	return nil, err
}

// RecordGraceAnswer implements latchkey.Store.
func (s *Spy) RecordGraceAnswer(ctx context.Context, gen uint64, hash []byte, e *latchkey.Event) (*latchkey.Rotated, error) {
	s.count()
	return s.inner.RecordGraceAnswer(ctx, gen, hash, e)
}

// ListSessions implements latchkey.Store.
func (s *Spy) ListSessions(ctx context.Context, userID uuid.UUID, now time.Time) ([]*latchkey.Session, error) {
	s.count()
	return s.inner.ListSessions(ctx, userID, now)
}

// RevokeSession implements latchkey.Store.
func (s *Spy) RevokeSession(ctx context.Context, id uuid.UUID, reason latchkey.RevokeReason, now time.Time) error {
	s.count()
	return s.inner.RevokeSession(ctx, id, reason, now)
}

// RevokeUserSessions implements latchkey.Store.
func (s *Spy) RevokeUserSessions(ctx context.Context, userID, except uuid.UUID, reason latchkey.RevokeReason, now time.Time) (int, error) {
	s.count()
	return s.inner.RevokeUserSessions(ctx, userID, except, reason, now)
}

// RevokedSince implements latchkey.Store.
func (s *Spy) RevokedSince(ctx context.Context, after latchkey.RevocationCursor, limit int) ([]*latchkey.Session, error) {
	s.count()
	return s.inner.RevokedSince(ctx, after, limit)
}

// AuthState implements latchkey.Store.
func (s *Spy) AuthState(ctx context.Context, userID, sessionID uuid.UUID, now time.Time) (*latchkey.User, bool, error) {
	s.count()
	return s.inner.AuthState(ctx, userID, sessionID, now)
}

// AppendEvent implements latchkey.Store.
func (s *Spy) AppendEvent(ctx context.Context, e *latchkey.Event) error {
	s.count()
	return s.inner.AppendEvent(ctx, e)
}

// ListEvents implements latchkey.Store.
func (s *Spy) ListEvents(ctx context.Context, f latchkey.EventFilter) ([]*latchkey.Event, error) {
	s.count()
	return s.inner.ListEvents(ctx, f)
}

// InsertKeyIfAbsent implements latchkey.Store.
func (s *Spy) InsertKeyIfAbsent(ctx context.Context, k *latchkey.KeyRecord) (bool, error) {
	s.count()
	return s.inner.InsertKeyIfAbsent(ctx, k)
}

// Keys implements latchkey.Store.
func (s *Spy) Keys(ctx context.Context) ([]*latchkey.KeyRecord, error) {
	s.count()
	return s.inner.Keys(ctx)
}

// RevokeKey implements latchkey.Store.
func (s *Spy) RevokeKey(ctx context.Context, id string, now time.Time) error {
	s.count()
	return s.inner.RevokeKey(ctx, id, now)
}

// RevokeSessionsByRotationKey implements latchkey.Store.
func (s *Spy) RevokeSessionsByRotationKey(ctx context.Context, keyID string, reason latchkey.RevokeReason, now time.Time) (int, error) {
	s.count()
	return s.inner.RevokeSessionsByRotationKey(ctx, keyID, reason, now)
}

// DeleteSessionsBefore implements latchkey.Store.
func (s *Spy) DeleteSessionsBefore(ctx context.Context, t time.Time, limit int) (int, error) {
	s.count()
	return s.inner.DeleteSessionsBefore(ctx, t, limit)
}

// DeleteEventsBefore implements latchkey.Store.
func (s *Spy) DeleteEventsBefore(ctx context.Context, t time.Time, limit int) (int, error) {
	s.count()
	return s.inner.DeleteEventsBefore(ctx, t, limit)
}

// Ping implements latchkey.Store.
func (s *Spy) Ping(ctx context.Context) error {
	s.count()
	return s.inner.Ping(ctx)
}

// Now implements latchkey.Store.
func (s *Spy) Now(ctx context.Context) (time.Time, error) {
	s.count()
	return s.inner.Now(ctx)
}

// Close implements latchkey.Store.
func (s *Spy) Close() error {
	s.count()
	return s.inner.Close()
}
