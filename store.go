package latchkey

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Store persists users, sessions, security events and keys. The engine
// decides; a store only carries out small operations, each documented with the
// errors it returns. Every method is safe for concurrent use, and every
// conditional write is atomic on its own: correctness never depends on the
// engine being the only writer.
//
// Times passed in are the engine's clock, truncated to microseconds; stores
// keep them with microsecond precision and never substitute their own clock.
//
// The conformance suite in package store/storetest is the full specification.
type Store interface {
	// InTx runs fn in one transaction on a Store bound to it and commits if
	// fn returns nil. fn may be called more than once (a serialization
	// failure is retried), so it must do nothing but store calls. The commit
	// is durable before InTx returns (revocations are made this way).
	// Calling InTx on a transaction's Store runs fn in that transaction.
	InTx(ctx context.Context, fn func(tx Store) error) error

	// CreateUser inserts u. It returns ErrEmailTaken if the email (compared
	// case-insensitively) is in use.
	CreateUser(ctx context.Context, u *User) error
	// UserByID returns the user, or ErrNotFound.
	UserByID(ctx context.Context, id uuid.UUID) (*User, error)
	// UserByEmail returns the user with that (lower-cased) email, or
	// ErrNotFound.
	UserByEmail(ctx context.Context, email string) (*User, error)
	// ListUsers returns a page of users ordered by creation (oldest first) and
	// the number of users matching q in all.
	ListUsers(ctx context.Context, q UserQuery) ([]*User, int, error)
	// DeleteUser deletes the user and, in the same durable transaction,
	// revokes its unrevoked sessions at now (reason admin). The sessions stay
	// until cleanup removes them past their absolute deadline, so that the
	// revocation feed reports them; the security events stay too. It
	// returns ErrNotFound for an unknown id.
	DeleteUser(ctx context.Context, id uuid.UUID, now time.Time) error
	// UpdateUser applies p at now and returns the updated user. It returns
	// ErrNotFound for an unknown id, or when p.IfPasswordHash is set and the
	// stored hash differs (nothing written), and ErrEmailTaken for a
	// clashing email.
	UpdateUser(ctx context.Context, id uuid.UUID, p UserPatch, now time.Time) (*User, error)

	// CreateSession inserts s only if its user exists and still has token
	// version userVersion, in one statement; otherwise it returns ErrNotFound
	// and writes nothing. A sign-in reads the user, spends tens of
	// milliseconds on the password hash, then opens the session: the
	// condition stops a sign-in that raced a password change, logout-all or
	// deactivation (each bumps the version) from leaving a live session.
	CreateSession(ctx context.Context, s *Session, userVersion int64) error
	// SessionByID returns the session, or ErrNotFound.
	SessionByID(ctx context.Context, id uuid.UUID) (*Session, error)
	// RotateSession is the refresh token's happy path: one conditional write
	// (see Rotation). It returns ErrNotFound, changing nothing, when the
	// condition does not hold.
	RotateSession(ctx context.Context, r Rotation) (*Rotated, error)
	// RecordGraceAnswer appends a grace_answer event for session e.SessionID
	// only if, in the same statement, the session is still at generation gen
	// with current hash hash, unrevoked, within both deadlines at e.At, and
	// its user is active. It returns the rotated state the answer needs, or
	// ErrNotFound (nothing written).
	RecordGraceAnswer(ctx context.Context, gen uint64, hash []byte, e *Event) (*Rotated, error)
	// ListSessions returns the user's sessions that are live at now, newest
	// first.
	ListSessions(ctx context.Context, userID uuid.UUID, now time.Time) ([]*Session, error)
	// RevokeSession ends an unrevoked session durably. It returns ErrNotFound
	// if the session does not exist or is already revoked.
	RevokeSession(ctx context.Context, id uuid.UUID, reason RevokeReason, now time.Time) error
	// RevokeUserSessions durably ends every unrevoked session of the user
	// except the one named by except (uuid.Nil for none) and returns how many
	// it ended.
	RevokeUserSessions(ctx context.Context, userID, except uuid.UUID, reason RevokeReason, now time.Time) (int, error)
	// RevokedSince returns up to limit sessions revoked after the cursor,
	// ordered by (revoked_at, id): the revocation feed that lets verifiers
	// refuse a revoked session's access tokens before they expire.
	RevokedSince(ctx context.Context, after RevocationCursor, limit int) ([]*Session, error)
	// AuthState reads, in one indexed statement, the user and whether the
	// session belongs to that user and is live at now. It returns ErrNotFound
	// for an unknown user.
	AuthState(ctx context.Context, userID, sessionID uuid.UUID, now time.Time) (*User, bool, error)

	// AppendEvent inserts e and sets e.ID.
	AppendEvent(ctx context.Context, e *Event) error
	// ListEvents returns matching events, newest first.
	ListEvents(ctx context.Context, f EventFilter) ([]*Event, error)

	// InsertKeyIfAbsent inserts k unless a key with the same purpose and
	// sequence number exists, and reports whether it inserted. Instances that
	// start together use it to agree on one key.
	InsertKeyIfAbsent(ctx context.Context, k *KeyRecord) (bool, error)
	// Keys returns every stored key, ordered by purpose and sequence.
	Keys(ctx context.Context) ([]*KeyRecord, error)
	// RevokeKey marks the key revoked at now. It returns ErrNotFound if the
	// key does not exist or is already revoked.
	RevokeKey(ctx context.Context, id string, now time.Time) error
	// RevokeSessionsByRotationKey durably ends every unrevoked session whose
	// chain uses rotation key keyID and returns how many it ended.
	RevokeSessionsByRotationKey(ctx context.Context, keyID string, reason RevokeReason, now time.Time) (int, error)

	// DeleteSessionsBefore deletes at most limit sessions whose absolute
	// deadline is before t and returns how many it deleted.
	DeleteSessionsBefore(ctx context.Context, t time.Time, limit int) (int, error)
	// DeleteEventsBefore deletes at most limit events older than t and
	// returns how many it deleted.
	DeleteEventsBefore(ctx context.Context, t time.Time, limit int) (int, error)

	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Now returns the database's clock, so that an instance can tell when
	// its own clock has drifted from the one the others share.
	Now(ctx context.Context) (time.Time, error)
	// Close releases the store's resources.
	Close() error
}

// UserQuery selects a page of users. Email, if set, matches users whose
// email contains it (case-insensitively). Limit 0 means 50.
type UserQuery struct {
	Email  string
	Offset int
	Limit  int
}

// RevocationCursor is a position in the revocation feed: the revocation time
// and session id of the last entry seen. The zero cursor starts at the
// beginning.
type RevocationCursor struct {
	At time.Time
	ID uuid.UUID
}

// Rotation is the condition and the new state of one refresh-token rotation.
// The write matches only a session with ID whose generation is From and whose
// current hash (or, with MatchNext, next hash) is Hash, in Mode, whose
// rotation key is RotationKeyID or one of Alternatives' keys, not revoked,
// with both deadlines after Now, whose user is active. It sets generation To,
// the two new hashes of the session's rotation key (a session's chain is
// derived with its own key, and the engine does not know which key a session
// has before it reads the row, so it offers the hashes for each recent key:
// the happy path stays one round trip after a key rotation), rotated_at =
// last_used_at = Now, the rotating user agent and device id, and the idle
// deadline to min(IdleDeadline, absolute deadline).
type Rotation struct {
	ID            uuid.UUID
	Mode          Mode
	RotationKeyID string
	From          uint64
	Hash          []byte
	MatchNext     bool
	To            uint64
	CurrentHash   []byte
	NextHash      []byte
	// Alternatives are the new hashes under other rotation keys.
	Alternatives []RotationHashes
	Now          time.Time
	IdleDeadline time.Time
	UserAgent    string
	DeviceID     string
}

// RotationHashes are a rotation's new hashes under one rotation key.
type RotationHashes struct {
	RotationKeyID string
	CurrentHash   []byte
	NextHash      []byte
}

// Keys returns every (key, hashes) choice of r, RotationKeyID's first.
func (r *Rotation) Keys() []RotationHashes {
	return append([]RotationHashes{{RotationKeyID: r.RotationKeyID, CurrentHash: r.CurrentHash, NextHash: r.NextHash}},
		r.Alternatives...)
}

// Rotated is what a rotation or grace answer returns: the fields an access
// token and a grant need, read in the same statement as the write.
type Rotated struct {
	// RotationKeyID is the session's rotation key: which of the rotation's
	// choices was applied (set by RotateSession only).
	RotationKeyID    string
	UserID           uuid.UUID
	Role             Role
	TokenVersion     int64
	Generation       uint64
	IdleDeadline     time.Time
	AbsoluteDeadline time.Time
}

// KeyPurpose says what a key is for.
type KeyPurpose string

// Key purposes.
const (
	// KeySigning signs access tokens (Ed25519).
	KeySigning KeyPurpose = "signing"
	// KeyRotation derives refresh-token secret chains (HMAC-SHA256).
	KeyRotation KeyPurpose = "rotation"
	// KeyTag authenticates refresh tokens before any storage call
	// (HMAC-SHA256).
	KeyTag KeyPurpose = "tag"
)

// KeyRecord is a stored key. Ciphertext is the private key material sealed
// with AES-256-GCM under the master key, with ID and Purpose as additional
// data; the store never sees it in the clear.
type KeyRecord struct {
	ID         string
	Purpose    KeyPurpose
	Seq        int64 // per purpose, from 1
	Algorithm  string
	Ciphertext []byte `json:"-"`
	PublicKey  []byte // signing keys only
	CreatedAt  time.Time
	ActivateAt time.Time // signing keys sign from this time on
	RetiredAt  time.Time // zero while in use
	RevokedAt  time.Time // zero unless revoked
}
