package httpapi

import (
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey-dev/latchkey"
)

// listSessions shows the caller's live sessions, marking its own.
func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	ss, err := s.e.Sessions(r.Context(), p.User.ID)
	if err != nil {
		return err
	}
	out := make([]SessionJSON, 0, len(ss))
	for _, x := range ss {
		out = append(out, SessionJSON{ID: x.ID, Mode: x.Mode, DeviceName: x.DeviceName, UserAgent: x.UserAgent,
			IPAddress: x.IPAddress, CreatedAt: x.CreatedAt, LastUsedAt: x.LastUsedAt, ExpiresAt: x.IdleDeadline,
			Current: x.ID == p.Claims.SessionID})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

// deleteSession ends one of the caller's sessions; another user's is 404.
func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	p := principalFrom(r.Context())
	if err := s.e.RevokeSession(r.Context(), p.User.ID, id, s.device(r, "", "")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteOtherSessions ends every session but the caller's (?others=true is
// required, so that a bare DELETE cannot end them by accident).
func (s *Server) deleteOtherSessions(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Query().Get("others") != "true" {
		return &latchkey.ValidationError{Field: "others", Reason: `must be "true"`}
	}
	p := principalFrom(r.Context())
	n, err := s.e.RevokeOtherSessions(r.Context(), p.User.ID, p.Claims.SessionID, s.device(r, "", ""))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]int{"revoked_sessions": n})
}

// RevocationJSON is one entry of the revocation feed.
type RevocationJSON struct {
	SessionID uuid.UUID             `json:"session_id"`
	UserID    uuid.UUID             `json:"user_id"`
	RevokedAt time.Time             `json:"revoked_at"`
	Reason    latchkey.RevokeReason `json:"reason"`
}

// RevocationsResponse is a page of the revocation feed. Cursor is passed back
// as ?since= to read on; HasMore says another page is ready now.
type RevocationsResponse struct {
	Revocations []RevocationJSON `json:"revocations"`
	Cursor      string           `json:"cursor"`
	HasMore     bool             `json:"has_more"`
}

func encodeCursor(c latchkey.RevocationCursor) string {
	if c.At.IsZero() {
		return ""
	}
	b := binary.BigEndian.AppendUint64(nil, uint64(c.At.UnixMicro()))
	return base64.RawURLEncoding.EncodeToString(append(b, c.ID[:]...))
}

func decodeCursor(s string) (latchkey.RevocationCursor, error) {
	if s == "" {
		return latchkey.RevocationCursor{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 24 {
		return latchkey.RevocationCursor{}, &latchkey.ValidationError{Field: "since", Reason: "is not a cursor from this feed"}
	}
	var c latchkey.RevocationCursor
	c.At = time.UnixMicro(int64(binary.BigEndian.Uint64(b[:8]))).UTC()
	copy(c.ID[:], b[8:])
	return c, nil
}

// revocations serves the feed of sessions revoked since a cursor to resource
// servers (package verifier), so that they refuse a revoked session's access
// tokens within seconds. The caller authenticates like introspection.
func (s *Server) revocations(w http.ResponseWriter, r *http.Request) error {
	if err := s.resourceServerAuth(r); err != nil {
		return err
	}
	after, err := decodeCursor(r.URL.Query().Get("since"))
	if err != nil {
		return err
	}
	limit := 500
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return &latchkey.ValidationError{Field: "limit", Reason: "must be between 1 and 1000"}
		}
	}
	ss, err := s.e.Revocations(r.Context(), after, limit+1)
	if err != nil {
		return err
	}
	resp := RevocationsResponse{Revocations: []RevocationJSON{}, Cursor: encodeCursor(after), HasMore: len(ss) > limit}
	if resp.HasMore {
		ss = ss[:limit]
	}
	for _, x := range ss {
		resp.Revocations = append(resp.Revocations, RevocationJSON{SessionID: x.ID, UserID: x.UserID,
			RevokedAt: x.RevokedAt, Reason: x.RevokeReason})
	}
	if n := len(ss); n > 0 {
		resp.Cursor = encodeCursor(latchkey.RevocationCursor{At: ss[n-1].RevokedAt, ID: ss[n-1].ID})
	}
	return writeJSON(w, http.StatusOK, resp)
}
