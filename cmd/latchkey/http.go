package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// jwksMaxAge is how long verifiers may cache /.well-known/jwks.json at most.
const jwksMaxAge = 5 * time.Minute

// newHandler serves the endpoints this build has. They live here until
// package httpapi exists and takes them over with the /v1 API.
func newHandler(e *latchkey.Engine) http.Handler {
	mux := http.NewServeMux()
	// /health is liveness only: it answers while the process can serve
	// HTTP, without touching the database (readiness will be
	// /health/ready).
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	// A new signing key is published Config.KeyPublishLead before it signs;
	// a cache that outlived the lead could meet a kid it has not fetched.
	maxAge := strconv.Itoa(int(min(jwksMaxAge, e.Config().KeyPublishLead) / time.Second))
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age="+maxAge)
		writeJSON(w, http.StatusOK, e.JWKS())
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
