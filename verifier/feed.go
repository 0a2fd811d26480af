package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
)

// feedPageSize is the limit asked of each feed request (the server allows
// up to 1000).
const feedPageSize = 500

// feed follows Latchkey's revocation feed: pages of revoked sessions after
// an opaque cursor.
//
// The feed orders entries by revoked_at, which the server takes from its
// clock before the revoking transaction commits. Two revocations can
// therefore commit in the other order than their times (two instances whose
// clocks differ, a slow commit), and a cursor that has passed the later one
// would skip the earlier. So that such an entry is not lost for good, every
// reread interval a poll starts again from a cursor received at least two
// intervals earlier; rereading is harmless, since remembering a revocation
// twice changes nothing.
type feed struct {
	url      *url.URL
	token    string
	client   *http.Client
	interval time.Duration
	reread   time.Duration

	mu         sync.Mutex // serializes polls; guards the fields below
	cursor     string     // where the next ordinary poll starts
	marks      []mark     // cursors received, oldest first, for rereads
	lastReread time.Time  // when a poll from an older cursor last completed
}

// mark is a cursor and when it was received.
type mark struct {
	at     time.Time
	cursor string
}

func newFeed(u *url.URL, token string, client *http.Client, interval time.Duration) *feed {
	return &feed{url: u, token: token, client: client, interval: interval,
		reread: max(time.Minute, 4*interval)}
}

// rereadFrom picks the cursor a reread starts from: the newest received at
// least two reread intervals before the newest one (and before now, in
// case polls have been failing), or the beginning of the feed. It drops the
// marks older than the one it picks; f.mu is held.
func (f *feed) rereadFrom(now time.Time) string {
	cutoff := now
	if n := len(f.marks); n > 0 && f.marks[n-1].at.Before(cutoff) {
		cutoff = f.marks[n-1].at
	}
	cutoff = cutoff.Add(-2 * f.reread)
	i := -1
	for j, m := range f.marks {
		if !m.at.After(cutoff) {
			i = j
		}
	}
	if i < 0 {
		return ""
	}
	f.marks = f.marks[i:]
	return f.marks[0].cursor
}

// revocationPage is one response of GET /v1/auth/revocations.
type revocationPage struct {
	Revocations []struct {
		SessionID uuid.UUID `json:"session_id"`
		RevokedAt time.Time `json:"revoked_at"`
	} `json:"revocations"`
	Cursor  string `json:"cursor"`
	HasMore bool   `json:"has_more"`
}

// PollOnce reads the revocation feed from where the last poll stopped to its
// end and remembers the sessions it lists. On failure the state is what the
// pages read before the failure made it, and the next poll retries from
// there. Polls are serialized. It returns ErrNoFeed without a feed.
func (v *Verifier) PollOnce(ctx context.Context) error {
	f := v.feed
	if f == nil {
		return ErrNoFeed
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := v.now()
	start, rereading := f.cursor, f.cursor == ""
	if !rereading && (now.Sub(f.lastReread) >= f.reread || now.Before(f.lastReread)) {
		start, rereading = f.rereadFrom(now), true
	}
	cursor := start
	for {
		page, err := f.fetch(ctx, cursor)
		if err != nil {
			return fmt.Errorf("verifier: poll revocation feed: %w", err)
		}
		v.remember(page, v.now())
		if page.HasMore && (page.Cursor == "" || page.Cursor == cursor) {
			return errors.New("verifier: poll revocation feed: has_more without a new cursor")
		}
		if page.Cursor != "" {
			cursor = page.Cursor
		}
		f.marks = append(f.marks, mark{at: v.now(), cursor: cursor})
		if !rereading {
			f.cursor = cursor
		}
		if !page.HasMore {
			break
		}
	}
	f.cursor = cursor
	if rereading {
		f.lastReread = now
	}
	v.revMu.Lock()
	defer v.revMu.Unlock()
	v.synced = true
	now = v.now()
	v.syncedAt = now
	for sid, until := range v.revoked {
		if now.After(until) {
			delete(v.revoked, sid)
		}
	}
	return nil
}

// remember records the page's revocations until every access token their
// sessions could have been issued is past its exp.
func (v *Verifier) remember(page *revocationPage, now time.Time) {
	v.revMu.Lock()
	defer v.revMu.Unlock()
	for _, r := range page.Revocations {
		until := r.RevokedAt.Add(v.maxLifetime + v.leeway)
		if r.SessionID == uuid.Nil || !until.After(now) {
			continue
		}
		if until.After(v.revoked[r.SessionID]) {
			v.revoked[r.SessionID] = until
		}
	}
}

// fetch GETs one page after cursor.
func (f *feed) fetch(ctx context.Context, cursor string) (*revocationPage, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	u := *f.url
	q := u.Query()
	if cursor != "" {
		q.Set("since", cursor)
	}
	q.Set("limit", strconv.Itoa(feedPageSize))
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+f.token)
	req.Header.Set("Accept", "application/json")
	body, _, err := get(f.client, req)
	if err != nil {
		return nil, err
	}
	var page revocationPage
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("revocation feed: %w", err)
	}
	return &page, nil
}

// Run follows the revocation feed: it polls at once and then every
// Options.PollInterval until ctx is done, and then returns nil. A failed
// poll is logged and changes nothing already known. Start it in its own
// goroutine (go v.Run(ctx)) and cancel ctx to stop it; it returns ErrNoFeed
// at once without a feed.
func (v *Verifier) Run(ctx context.Context) error {
	if v.feed == nil {
		return ErrNoFeed
	}
	// Poll cadence is real time even when Options.Now is a test clock.
	t := time.NewTicker(v.feed.interval)
	defer t.Stop()
	for {
		if err := v.PollOnce(ctx); err != nil && ctx.Err() == nil {
			v.log.WarnContext(ctx, "verifier: revocation feed poll failed; keeping what is known", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
