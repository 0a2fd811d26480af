package httpapi

import (
	_ "embed"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
)

// OpenAPI is the API's OpenAPI 3.1 document, served at /openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, err := w.Write(OpenAPI)
	return err
}

func itoa(n int) string { return strconv.Itoa(n) }

func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
