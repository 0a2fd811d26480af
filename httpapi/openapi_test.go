package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/httpapi"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

// The tests in this file keep httpapi/openapi.json true: every registered
// route is documented and nothing else is (TestOpenAPIRoutes), the document
// is a well-formed OpenAPI 3.1 description whose references resolve, whose
// schemas compile as JSON Schema 2020-12 and whose examples match their
// schemas (TestOpenAPIDocument), it is what /openapi.json serves
// (TestOpenAPIServed), and real responses of a running server match it:
// status, Content-Type, headers and body (TestOpenAPIConformance).

// oaDocURL names the document as a JSON Schema resource; schemas inside it are
// compiled as oaDocURL#/json/pointer.
const oaDocURL = "openapi.json"

var oaHTTPMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// oaDoc is the parsed document with a JSON Schema compiler that has the
// whole document loaded as one resource, so that "#/components/schemas/…"
// references inside schemas resolve.
type oaDoc struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
	ops      []oaOperation
}

// oaOperation is one method of one path.
type oaOperation struct {
	method string // upper case
	path   string // the template, as in the document
	node   map[string]any
	tokens []string // its location in the document
}

func (op oaOperation) route() string { return op.method + " " + op.path }

func loadOpenAPI(t *testing.T) *oaDoc {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(httpapi.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	res, err := jsonschema.UnmarshalJSON(bytes.NewReader(httpapi.OpenAPI))
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020) // OpenAPI 3.1 schemas are JSON Schema 2020-12
	c.AssertFormat()                     // uuid, date-time, email are checked, not just noted
	if err := c.AddResource(oaDocURL, res); err != nil {
		t.Fatalf("openapi.json as a schema resource: %v", err)
	}
	o := &oaDoc{doc: doc, compiler: c, schemas: map[string]*jsonschema.Schema{}}
	paths, _ := doc["paths"].(map[string]any)
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		item, _ := paths[p].(map[string]any)
		for _, m := range oaHTTPMethods {
			if node, ok := item[m].(map[string]any); ok {
				o.ops = append(o.ops, oaOperation{method: strings.ToUpper(m), path: p, node: node,
					tokens: []string{"paths", p, m}})
			}
		}
	}
	return o
}

// oaEscapeToken escapes one JSON pointer token (RFC 6901).
func oaEscapeToken(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}

// oaPointer renders tokens as a JSON pointer, for messages.
func oaPointer(tokens []string) string {
	var b strings.Builder
	for _, tok := range tokens {
		b.WriteString("/" + oaEscapeToken(tok))
	}
	return "#" + b.String()
}

// oaSchemaURL is the location of the schema at tokens, for the compiler: a
// JSON pointer in a URL fragment (so "{id}" is percent-encoded).
func oaSchemaURL(tokens []string) string {
	var b strings.Builder
	for _, tok := range tokens {
		b.WriteString("/" + url.PathEscape(oaEscapeToken(tok)))
	}
	return oaDocURL + "#" + b.String()
}

// oaRefTokens parses a local reference ("#/components/schemas/User").
func oaRefTokens(ref string) ([]string, error) {
	frag, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, fmt.Errorf("$ref %q is not local to the document", ref)
	}
	if frag == "" {
		return nil, nil
	}
	if !strings.HasPrefix(frag, "/") {
		return nil, fmt.Errorf("$ref %q is not a JSON pointer", ref)
	}
	var tokens []string
	for _, tok := range strings.Split(frag[1:], "/") {
		tok, err := url.PathUnescape(tok)
		if err != nil {
			return nil, fmt.Errorf("$ref %q: %v", ref, err)
		}
		tokens = append(tokens, strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~"))
	}
	return tokens, nil
}

func (o *oaDoc) lookup(tokens []string) (any, bool) {
	var cur any = o.doc
	for _, tok := range tokens {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// resolve returns the object at tokens, following Reference Objects, and
// where it really is.
func (o *oaDoc) resolve(tokens []string) (map[string]any, []string, error) {
	for range 16 {
		v, ok := o.lookup(tokens)
		if !ok {
			return nil, nil, fmt.Errorf("%s does not exist", oaPointer(tokens))
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, nil, fmt.Errorf("%s is not an object", oaPointer(tokens))
		}
		ref, isRef := m["$ref"].(string)
		if !isRef {
			return m, tokens, nil
		}
		next, err := oaRefTokens(ref)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %v", oaPointer(tokens), err)
		}
		tokens = next
	}
	return nil, nil, fmt.Errorf("%s: reference chain too long", oaPointer(tokens))
}

// schema compiles (once) the schema at tokens.
func (o *oaDoc) schema(tokens []string) (*jsonschema.Schema, error) {
	loc := oaSchemaURL(tokens)
	if s, ok := o.schemas[loc]; ok {
		return s, nil
	}
	s, err := o.compiler.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %v", oaPointer(tokens), err)
	}
	o.schemas[loc] = s
	return s, nil
}

// parameters returns the operation's parameters (path-level and its own)
// by "in:name", resolved.
func (o *oaDoc) parameters(op oaOperation) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	for _, base := range [][]string{op.tokens[:2], op.tokens} {
		list, _ := o.lookup(append(slices.Clone(base), "parameters"))
		ps, _ := list.([]any)
		for i := range ps {
			p, _, err := o.resolve(append(slices.Clone(base), "parameters", strconv.Itoa(i)))
			if err != nil {
				return nil, err
			}
			name, _ := p["name"].(string)
			in, _ := p["in"].(string)
			out[in+":"+name] = p
		}
	}
	return out, nil
}

// match finds the operation serving method and path, preferring literal
// segments over templated ones as net/http's ServeMux does
// ("PATCH /v1/users/me" over "PATCH /v1/users/{id}").
func (o *oaDoc) match(method, path string) (oaOperation, bool) {
	best, found := -1, oaOperation{}
	ps := strings.Split(path, "/")
	for _, op := range o.ops {
		if op.method != method {
			continue
		}
		ts := strings.Split(op.path, "/")
		if len(ts) != len(ps) {
			continue
		}
		literal, ok := 0, true
		for i := range ts {
			if strings.HasPrefix(ts[i], "{") && strings.HasSuffix(ts[i], "}") {
				ok = ok && ps[i] != ""
				continue
			}
			if ts[i] != ps[i] {
				ok = false
				break
			}
			literal++
		}
		if ok && literal > best {
			best, found = literal, op
		}
	}
	return found, best >= 0
}

var oaWildcard = regexp.MustCompile(`\{[^}]*\}`)

// oaNormalizeRoute writes a ServeMux pattern or a documented "METHOD /path"
// one way: the method upper case, "{name...}" as "{name}" and "{$}"
// dropped, so that Go's wildcards and OpenAPI's templates compare equal.
func oaNormalizeRoute(pattern string) string {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "ANY", pattern
	}
	path = oaWildcard.ReplaceAllStringFunc(strings.TrimSpace(path), func(w string) string {
		name := strings.TrimSuffix(w[1:len(w)-1], "...")
		if name == "$" {
			return ""
		}
		return "{" + name + "}"
	})
	return strings.ToUpper(method) + " " + path
}

func TestOpenAPIRoutes(t *testing.T) {
	o := loadOpenAPI(t)
	srv := latchkeytest.NewServer(t)

	registered := map[string]bool{}
	for _, r := range srv.API.Routes() {
		n := oaNormalizeRoute(r)
		if registered[n] {
			t.Errorf("route %q is registered twice", r)
		}
		registered[n] = true
	}
	if len(registered) == 0 {
		t.Fatal("the server registers no routes")
	}
	documented := map[string]bool{}
	for _, op := range o.ops {
		documented[oaNormalizeRoute(op.route())] = true
	}
	for _, r := range slices.Sorted(maps.Keys(registered)) {
		if !documented[r] {
			t.Errorf("route %q is registered but not documented in openapi.json", r)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(documented)) {
		if !registered[r] {
			t.Errorf("%q is documented in openapi.json but no such route is registered", r)
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	srv := latchkeytest.NewServer(t)
	resp, err := srv.HTTP.Client().Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Fatalf("GET /openapi.json: status = %d, want %d", got, want)
	}
	if got, want := oaMediaType(resp.Header.Get("Content-Type")), "application/json"; got != want {
		t.Errorf("GET /openapi.json: Content-Type = %q, want %q", got, want)
	}
	if !bytes.Equal(body, httpapi.OpenAPI) {
		t.Errorf("GET /openapi.json served %d bytes that differ from the embedded document (%d bytes)",
			len(body), len(httpapi.OpenAPI))
	}
	onDisk, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, httpapi.OpenAPI) {
		t.Error("httpapi.OpenAPI differs from httpapi/openapi.json on disk")
	}
}

func TestOpenAPIDocument(t *testing.T) {
	o := loadOpenAPI(t)

	t.Run("format", func(t *testing.T) {
		if err := oaDuplicateKeys(httpapi.OpenAPI); err != nil {
			t.Errorf("openapi.json: %v", err)
		}
		var compact, want bytes.Buffer
		if err := json.Compact(&compact, httpapi.OpenAPI); err != nil {
			t.Fatal(err)
		}
		if err := json.Indent(&want, compact.Bytes(), "", "  "); err != nil {
			t.Fatal(err)
		}
		want.WriteByte('\n')
		if got := httpapi.OpenAPI; !bytes.Equal(got, want.Bytes()) {
			gl, wl := strings.Split(string(got), "\n"), strings.Split(want.String(), "\n")
			for i := range min(len(gl), len(wl)) {
				if gl[i] != wl[i] {
					t.Fatalf("openapi.json is not pretty-printed with two-space indentation (as json.Indent); "+
						"line %d: got %q, want %q", i+1, gl[i], wl[i])
				}
			}
			t.Fatalf("openapi.json is not pretty-printed with two-space indentation and one final newline: "+
				"got %d lines, want %d", len(gl), len(wl))
		}
	})

	t.Run("header", func(t *testing.T) {
		if got, want := o.doc["openapi"], "3.1.0"; got != want {
			t.Errorf("openapi = %v, want %q", got, want)
		}
		info, _ := o.doc["info"].(map[string]any)
		for _, f := range []string{"title", "version"} {
			if s, _ := info[f].(string); s == "" {
				t.Errorf("info.%s is missing", f)
			}
		}
		if len(o.ops) == 0 {
			t.Error("the document has no operations")
		}
	})

	t.Run("references", func(t *testing.T) {
		oaWalk(o.doc, nil, func(tokens []string, m map[string]any) bool {
			ref, ok := m["$ref"].(string)
			if !ok {
				return true
			}
			target, err := oaRefTokens(ref)
			if err != nil {
				t.Errorf("%s: %v", oaPointer(tokens), err)
			} else if _, ok := o.lookup(target); !ok {
				t.Errorf("%s: $ref %q does not resolve", oaPointer(tokens), ref)
			}
			return true
		})
	})

	t.Run("operations", func(t *testing.T) {
		oaCheckOperations(t, o)
	})

	t.Run("schemas", func(t *testing.T) {
		for _, loc := range oaSchemaLocations(o) {
			if _, err := o.schema(loc); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("examples", func(t *testing.T) {
		oaCheckExamples(t, o)
	})
}

// oaWalk calls f for every object in v (depth first, with its location); f
// returns whether to descend into it.
func oaWalk(v any, tokens []string, f func(tokens []string, m map[string]any) bool) {
	switch x := v.(type) {
	case map[string]any:
		if !f(tokens, x) {
			return
		}
		for _, k := range slices.Sorted(maps.Keys(x)) {
			oaWalk(x[k], append(slices.Clone(tokens), k), f)
		}
	case []any:
		for i, e := range x {
			oaWalk(e, append(slices.Clone(tokens), strconv.Itoa(i)), f)
		}
	}
}

// oaDuplicateKeys reports an object key written twice, which encoding/json
// would silently resolve to the last one.
func oaDuplicateKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	var value func(path string) error
	value = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				key, _ := kt.(string)
				if seen[key] {
					return fmt.Errorf("key %q appears twice in #%s", key, path)
				}
				seen[key] = true
				if err := value(path + "/" + oaEscapeToken(key)); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if err := value(path + "/" + strconv.Itoa(i)); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	return value("")
}

var (
	oaStatusKey     = regexp.MustCompile(`^([1-5][0-9]{2}|[1-5]XX|default)$`)
	oaPathParameter = regexp.MustCompile(`\{([^}]+)\}`)
)

func oaCheckOperations(t *testing.T, o *oaDoc) {
	t.Helper()
	components, _ := o.doc["components"].(map[string]any)
	schemes, _ := components["securitySchemes"].(map[string]any)
	tags := map[string]bool{}
	tagList, _ := o.doc["tags"].([]any)
	for _, tg := range tagList {
		m, _ := tg.(map[string]any)
		name, _ := m["name"].(string)
		tags[name] = true
	}
	pathItemKeys := []string{"$ref", "summary", "description", "servers", "parameters"}
	paths, _ := o.doc["paths"].(map[string]any)
	for p, v := range paths {
		if !strings.HasPrefix(p, "/") {
			t.Errorf("path %q does not start with /", p)
		}
		item, _ := v.(map[string]any)
		for k := range item {
			if !slices.Contains(oaHTTPMethods, k) && !slices.Contains(pathItemKeys, k) {
				t.Errorf("paths[%q]: unknown key %q", p, k)
			}
		}
	}
	operationIDs := map[string]string{}
	for _, op := range o.ops {
		where := op.route()
		id, _ := op.node["operationId"].(string)
		if id == "" {
			t.Errorf("%s: no operationId", where)
		} else if other, dup := operationIDs[id]; dup {
			t.Errorf("%s: operationId %q is also %s's", where, id, other)
		}
		operationIDs[id] = where

		// Responses: at least one, valid keys, each with a description.
		responses, _ := op.node["responses"].(map[string]any)
		if len(responses) == 0 {
			t.Errorf("%s: no responses", where)
		}
		for code := range responses {
			if !oaStatusKey.MatchString(code) {
				t.Errorf("%s: response key %q is not a status code", where, code)
			}
			r, _, err := o.resolve(append(slices.Clone(op.tokens), "responses", code))
			if err != nil {
				t.Errorf("%s: response %s: %v", where, code, err)
				continue
			}
			if d, _ := r["description"].(string); d == "" {
				t.Errorf("%s: response %s has no description", where, code)
			}
		}

		// Parameters: well-formed, and the path's templates are exactly
		// the declared path parameters.
		params, err := o.parameters(op)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		declared := map[string]bool{}
		for key, p := range params {
			in, name, _ := strings.Cut(key, ":")
			if name == "" || !slices.Contains([]string{"query", "header", "path", "cookie"}, in) {
				t.Errorf("%s: parameter %q has no name or an invalid \"in\"", where, key)
			}
			if _, ok := p["schema"]; !ok {
				if _, ok := p["content"]; !ok {
					t.Errorf("%s: parameter %s has neither schema nor content", where, key)
				}
			}
			if in == "path" {
				declared[name] = true
				if req, _ := p["required"].(bool); !req {
					t.Errorf("%s: path parameter %q must be required", where, name)
				}
			}
		}
		inPath := map[string]bool{}
		for _, m := range oaPathParameter.FindAllStringSubmatch(op.path, -1) {
			inPath[m[1]] = true
			if !declared[m[1]] {
				t.Errorf("%s: path parameter {%s} is not declared", where, m[1])
			}
		}
		for name := range declared {
			if !inPath[name] {
				t.Errorf("%s: path parameter %q is declared but not in the path", where, name)
			}
		}

		// Request body: resolves and has content.
		if _, ok := op.node["requestBody"]; ok {
			rb, _, err := o.resolve(append(slices.Clone(op.tokens), "requestBody"))
			if err != nil {
				t.Errorf("%s: requestBody: %v", where, err)
			} else if c, _ := rb["content"].(map[string]any); len(c) == 0 {
				t.Errorf("%s: requestBody has no content", where)
			}
		}

		// Security requirements name defined schemes.
		sec, _ := op.node["security"].([]any)
		for _, req := range sec {
			m, _ := req.(map[string]any)
			for name := range m {
				if _, ok := schemes[name]; !ok {
					t.Errorf("%s: security scheme %q is not defined", where, name)
				}
			}
		}
		opTags, _ := op.node["tags"].([]any)
		for _, tg := range opTags {
			if s, _ := tg.(string); !tags[s] {
				t.Errorf("%s: tag %v is not declared", where, tg)
			}
		}
	}
}

// oaSchemaLocations lists every schema in the document: the component
// schemas, and every "schema" of a parameter, header or media type.
func oaSchemaLocations(o *oaDoc) [][]string {
	var out [][]string
	components, _ := o.doc["components"].(map[string]any)
	schemas, _ := components["schemas"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(schemas)) {
		out = append(out, []string{"components", "schemas", name})
	}
	oaWalk(o.doc, nil, func(tokens []string, m map[string]any) bool {
		if len(tokens) >= 2 && tokens[0] == "components" && tokens[1] == "schemas" {
			return false
		}
		if _, ok := m["schema"].(map[string]any); ok {
			out = append(out, append(slices.Clone(tokens), "schema"))
		}
		return true
	})
	return out
}

// oaCheckExamples validates every example against its schema and requires an
// example for every request body and every successful response body.
func oaCheckExamples(t *testing.T, o *oaDoc) {
	t.Helper()
	check := func(where string, schemaAt []string, example any) {
		t.Helper()
		s, err := o.schema(schemaAt)
		if err != nil {
			t.Error(err)
			return
		}
		// Round-trip through the schema library's decoder, so that
		// numbers are json.Number as in real responses.
		b, _ := json.Marshal(example)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return
		}
		if err := s.Validate(inst); err != nil {
			t.Errorf("%s: the example does not match its schema:\n%v", where, err)
		}
	}
	oaWalk(o.doc, nil, func(tokens []string, m map[string]any) bool {
		if len(tokens) >= 2 && tokens[0] == "components" && tokens[1] == "schemas" {
			// Schema Objects: "examples" is an array of instances.
			if len(tokens) == 3 {
				exs, _ := m["examples"].([]any)
				for i, ex := range exs {
					check(fmt.Sprintf("%s/examples/%d", oaPointer(tokens), i), tokens, ex)
				}
			}
			return len(tokens) < 3
		}
		if _, ok := m["schema"].(map[string]any); !ok {
			return true
		}
		if ex, ok := m["example"]; ok {
			check(oaPointer(tokens)+"/example", append(slices.Clone(tokens), "schema"), ex)
		}
		if exs, ok := m["examples"].(map[string]any); ok {
			for name := range exs {
				ex, _, err := o.resolve(append(slices.Clone(tokens), "examples", name))
				if err != nil {
					t.Errorf("%s/examples/%s: %v", oaPointer(tokens), name, err)
					continue
				}
				check(oaPointer(tokens)+"/examples/"+name, append(slices.Clone(tokens), "schema"), ex["value"])
			}
		}
		return false
	})

	hasExample := func(media map[string]any) bool {
		_, one := media["example"]
		many, _ := media["examples"].(map[string]any)
		return one || len(many) > 0
	}
	needsExample := func(mt string) bool {
		return oaIsJSON(mt) || mt == "application/x-www-form-urlencoded" || mt == "text/plain"
	}
	for _, op := range o.ops {
		if _, ok := op.node["requestBody"]; ok {
			rb, _, err := o.resolve(append(slices.Clone(op.tokens), "requestBody"))
			if err == nil {
				content, _ := rb["content"].(map[string]any)
				for mt, v := range content {
					if m, _ := v.(map[string]any); needsExample(mt) && !hasExample(m) {
						t.Errorf("%s: request body %s has no example", op.route(), mt)
					}
				}
			}
		}
		responses, _ := op.node["responses"].(map[string]any)
		for code := range responses {
			if !strings.HasPrefix(code, "2") {
				continue
			}
			r, _, err := o.resolve(append(slices.Clone(op.tokens), "responses", code))
			if err != nil {
				continue // reported by the operations subtest
			}
			content, _ := r["content"].(map[string]any)
			for mt, v := range content {
				if m, _ := v.(map[string]any); needsExample(mt) && !hasExample(m) {
					t.Errorf("%s: response %s %s has no example", op.route(), code, mt)
				}
			}
		}
	}
}

func oaMediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return mt
}

func oaIsJSON(mt string) bool { return mt == "application/json" || strings.HasSuffix(mt, "+json") }

// ---------------------------------------------------------------------------
// Real requests against the document.

// oaClient sends requests to a server and checks every response against
// the document, recording which routes and statuses were seen.
type oaClient struct {
	t    *testing.T
	o    *oaDoc
	srv  *latchkeytest.Server
	seen map[string]map[int]bool // documented route → statuses seen
}

// oaCall is one request. At most one of json, form and raw is set.
type oaCall struct {
	method string
	path   string // with the query, if any
	client *http.Client
	bearer string
	header map[string]string
	json   any
	form   url.Values
	raw    string
	ctype  string // Content-Type for raw
	code   string // the problem code expected, for error statuses
}

// oaReply is a response, its body decoded when it is a JSON object.
type oaReply struct {
	t      *testing.T
	name   string
	status int
	header http.Header
	body   []byte
	obj    map[string]any
}

func (r *oaReply) str(key string) string {
	r.t.Helper()
	s, ok := r.obj[key].(string)
	if !ok || s == "" {
		r.t.Fatalf("%s: no %q in the answer: %s", r.name, key, r.body)
	}
	return s
}

func (c *oaClient) do(want int, q oaCall) *oaReply {
	c.t.Helper()
	t := c.t
	var sent []byte
	var ctype string
	switch {
	case q.form != nil:
		sent, ctype = []byte(q.form.Encode()), "application/x-www-form-urlencoded"
	case q.json != nil:
		b, err := json.Marshal(q.json)
		if err != nil {
			t.Fatal(err)
		}
		sent, ctype = b, "application/json"
	case q.raw != "":
		sent, ctype = []byte(q.raw), q.ctype
	}
	var body io.Reader
	if sent != nil {
		body = bytes.NewReader(sent)
	}
	req, err := http.NewRequest(q.method, c.srv.URL+q.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if q.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+q.bearer)
	}
	for k, v := range q.header {
		req.Header.Set(k, v)
	}
	client := q.client
	if client == nil {
		client = c.srv.HTTP.Client()
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", q.method, q.path, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: read body: %v", q.method, q.path, err)
	}
	r := &oaReply{t: t, name: q.method + " " + q.path, status: resp.StatusCode, header: resp.Header, body: b}
	_ = json.Unmarshal(b, &r.obj)
	if got := resp.StatusCode; got != want {
		t.Fatalf("%s: status = %d, want %d; body: %s", r.name, got, want, b)
	}
	if q.code != "" {
		if got, _ := r.obj["code"].(string); got != q.code {
			t.Errorf("%s: problem code = %q, want %q", r.name, got, q.code)
		}
	}
	c.validate(q, ctype, sent, resp, b)
	return r
}

// validate checks one exchange against the document: the operation exists,
// its query parameters are declared, an accepted request body matches the
// request schema, and the status, headers, Content-Type and body of the
// response are documented for that operation.
func (c *oaClient) validate(q oaCall, ctype string, sent []byte, resp *http.Response, body []byte) {
	c.t.Helper()
	t := c.t
	u, err := url.Parse(q.path)
	if err != nil {
		t.Fatal(err)
	}
	op, ok := c.o.match(q.method, u.Path)
	if !ok {
		t.Errorf("%s %s: no operation in openapi.json serves it", q.method, u.Path)
		return
	}
	status := resp.StatusCode
	if c.seen[op.route()] == nil {
		c.seen[op.route()] = map[int]bool{}
	}
	c.seen[op.route()][status] = true
	where := fmt.Sprintf("%s (%s %s) → %d", op.route(), q.method, q.path, status)

	params, err := c.o.parameters(op)
	if err != nil {
		t.Errorf("%s: %v", where, err)
	}
	for name := range u.Query() {
		if _, ok := params["query:"+name]; !ok {
			t.Errorf("%s: query parameter %q is not documented", where, name)
		}
	}
	if status < 300 && sent != nil {
		c.validateRequest(where, op, ctype, sent)
	}

	responses, _ := op.node["responses"].(map[string]any)
	key := strconv.Itoa(status)
	if _, ok := responses[key]; !ok {
		if _, ok := responses["default"]; !ok {
			t.Errorf("%s: status %d is not documented for %s (documented: %s); body: %s", where, status, op.route(),
				strings.Join(slices.Sorted(maps.Keys(responses)), ", "), body)
			return
		}
		key = "default"
	}
	res, resTokens, err := c.o.resolve(append(slices.Clone(op.tokens), "responses", key))
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	c.validateHeaders(where, res, resTokens, resp.Header)

	content, _ := res["content"].(map[string]any)
	if len(body) == 0 {
		if len(content) > 0 {
			t.Errorf("%s: the body is empty but the document promises %s", where,
				strings.Join(slices.Sorted(maps.Keys(content)), ", "))
		}
		return
	}
	if len(content) == 0 {
		t.Errorf("%s: the document promises no body, got %q", where, body)
		return
	}
	mt := oaMediaType(resp.Header.Get("Content-Type"))
	if _, ok := content[mt]; !ok {
		t.Errorf("%s: Content-Type %q is not documented (documented: %s)", where, resp.Header.Get("Content-Type"),
			strings.Join(slices.Sorted(maps.Keys(content)), ", "))
		return
	}
	schemaAt := append(slices.Clone(resTokens), "content", mt, "schema")
	s, err := c.o.schema(schemaAt)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	var inst any = string(body)
	if oaIsJSON(mt) {
		if inst, err = jsonschema.UnmarshalJSON(bytes.NewReader(body)); err != nil {
			t.Errorf("%s: the body is not JSON: %v\nbody: %s", where, err, body)
			return
		}
	}
	if err := s.Validate(inst); err != nil {
		t.Errorf("%s: the body does not match the documented schema %s:\n%v\nbody: %s", where, oaPointer(schemaAt),
			err, body)
	}
}

// validateRequest checks a request body the server accepted against the
// documented request schema, so that the document does not refuse what the
// server takes.
func (c *oaClient) validateRequest(where string, op oaOperation, ctype string, sent []byte) {
	c.t.Helper()
	t := c.t
	if _, ok := op.node["requestBody"]; !ok {
		t.Errorf("%s: the server accepted a request body the document does not describe", where)
		return
	}
	rb, rbTokens, err := c.o.resolve(append(slices.Clone(op.tokens), "requestBody"))
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	mt := oaMediaType(ctype)
	content, _ := rb["content"].(map[string]any)
	if _, ok := content[mt]; !ok {
		t.Errorf("%s: the server accepted a %s request body, which is not documented", where, mt)
		return
	}
	schemaAt := append(slices.Clone(rbTokens), "content", mt, "schema")
	s, err := c.o.schema(schemaAt)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	var inst any
	if mt == "application/x-www-form-urlencoded" {
		vals, err := url.ParseQuery(string(sent))
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return
		}
		m := map[string]any{}
		for k, v := range vals {
			m[k] = v[0]
		}
		inst = m
	} else if inst, err = jsonschema.UnmarshalJSON(bytes.NewReader(sent)); err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	if err := s.Validate(inst); err != nil {
		t.Errorf("%s: the accepted request body does not match the documented schema %s:\n%v\nbody: %s", where,
			oaPointer(schemaAt), err, sent)
	}
}

// validateHeaders checks the documented response headers: required ones are
// present, and any present one matches its schema (one of its values, for
// repeated headers such as Set-Cookie).
func (c *oaClient) validateHeaders(where string, res map[string]any, resTokens []string, got http.Header) {
	c.t.Helper()
	t := c.t
	headers, _ := res["headers"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		h, hTokens, err := c.o.resolve(append(slices.Clone(resTokens), "headers", name))
		if err != nil {
			t.Errorf("%s: header %s: %v", where, name, err)
			continue
		}
		values := got.Values(name)
		if len(values) == 0 {
			if req, _ := h["required"].(bool); req {
				t.Errorf("%s: the documented header %s is missing", where, name)
			}
			continue
		}
		schemaAt := append(slices.Clone(hTokens), "schema")
		s, err := c.o.schema(schemaAt)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		hs, _ := h["schema"].(map[string]any)
		var errs []error
		for _, v := range values {
			var inst any = v
			if hs["type"] == "integer" {
				if _, err := strconv.ParseInt(v, 10, 64); err == nil {
					inst = json.Number(v)
				}
			}
			if err := s.Validate(inst); err != nil {
				errs = append(errs, err)
				continue
			}
			errs = nil
			break
		}
		if errs != nil {
			t.Errorf("%s: header %s: %q does not match the documented schema %s:\n%v", where, name, values,
				oaPointer(schemaAt), errors.Join(errs...))
		}
	}
}

// problemOnly checks a response that no operation describes (an unknown
// path or method) against the Problem schema.
func (c *oaClient) problemOnly(method, path string, want int, code string) {
	c.t.Helper()
	t := c.t
	req, err := http.NewRequest(method, c.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.srv.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	where := fmt.Sprintf("%s %s → %d", method, path, resp.StatusCode)
	if got := resp.StatusCode; got != want {
		t.Errorf("%s %s: status = %d, want %d", method, path, got, want)
	}
	if got, want := oaMediaType(resp.Header.Get("Content-Type")), "application/problem+json"; got != want {
		t.Errorf("%s: Content-Type = %q, want %q", where, got, want)
	}
	s, err := c.o.schema([]string{"components", "schemas", "Problem"})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Errorf("%s: %v; body: %s", where, err, b)
		return
	}
	if err := s.Validate(inst); err != nil {
		t.Errorf("%s: the body does not match #/components/schemas/Problem:\n%v\nbody: %s", where, err, b)
	}
	if m, _ := inst.(map[string]any); m["code"] != code {
		t.Errorf("%s: code = %v, want %q", where, m["code"], code)
	}
}

func TestOpenAPIConformance(t *testing.T) {
	o := loadOpenAPI(t)
	seen := map[string]map[int]bool{}
	const secret = "introspection-secret-for-tests"
	srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(opts *httpapi.Options) {
		opts.IntrospectionSecret = secret
	}))
	e := srv.Engine
	c := &oaClient{t: t, o: o, srv: srv, seen: seen}

	const (
		adaPassword = "correct horse battery staple"
		newPassword = "a much longer passphrase, 2030"
	)
	adaEmail := "ada@example.com"

	// Discovery and operations.
	c.do(200, oaCall{method: "GET", path: "/health"})
	c.do(200, oaCall{method: "GET", path: "/.well-known/jwks.json"})
	c.do(200, oaCall{method: "GET", path: "/openapi.json"})
	c.do(200, oaCall{method: "GET", path: "/metrics"})
	c.problemOnly("GET", "/v1/nowhere", 404, "not_found")
	c.problemOnly("GET", "/v1/auth/login", 405, "method_not_allowed")

	// Registration.
	register := map[string]any{"email": adaEmail, "password": adaPassword, "full_name": "Ada Lovelace"}
	adaID := c.do(201, oaCall{method: "POST", path: "/v1/users", json: register}).str("id")
	c.do(409, oaCall{method: "POST", path: "/v1/users", json: register, code: "email_taken"})
	c.do(422, oaCall{method: "POST", path: "/v1/users", code: "validation_failed",
		json: map[string]any{"email": "not-an-email", "password": adaPassword}})
	c.do(422, oaCall{method: "POST", path: "/v1/users", code: "weak_password",
		json: map[string]any{"email": "bob@example.com", "password": "password"}})
	c.do(422, oaCall{method: "POST", path: "/v1/users", code: "malformed_body", raw: `{"email":`, ctype: "application/json"})
	c.do(422, oaCall{method: "POST", path: "/v1/users", code: "malformed_body",
		json: map[string]any{"email": "bob@example.com", "password": adaPassword, "nickname": "bob"}})
	c.do(415, oaCall{method: "POST", path: "/v1/users", code: "unsupported_media_type", raw: "email=a", ctype: "text/plain"})
	c.do(413, oaCall{method: "POST", path: "/v1/users", code: "body_too_large",
		raw: `{"email":"` + strings.Repeat("a", 70<<10) + `"}`, ctype: "application/json"})

	admin := latchkeytest.NewUser(t, e, latchkeytest.Admin())
	adminTok := c.do(200, oaCall{method: "POST", path: "/v1/auth/login-mobile",
		json: map[string]any{"email": admin.Email, "password": latchkeytest.DefaultPassword}}).str("access_token")

	// Sign-in, browser cookie mode.
	browser := srv.Client()
	adaTok := c.do(200, oaCall{method: "POST", path: "/v1/auth/login", client: browser,
		header: map[string]string{"X-Device-Name": "Ada's laptop"},
		form:   url.Values{"username": {adaEmail}, "password": {adaPassword}, "grant_type": {"password"}},
	}).str("access_token")
	c.do(401, oaCall{method: "POST", path: "/v1/auth/login", code: "invalid_credentials",
		json: map[string]any{"email": adaEmail, "password": "not the password"}})
	c.do(401, oaCall{method: "POST", path: "/v1/auth/login", code: "invalid_credentials",
		form: url.Values{"username": {"nobody@example.com"}, "password": {adaPassword}}})
	c.do(403, oaCall{method: "POST", path: "/v1/auth/login", code: "cross_site_request",
		header: map[string]string{"Origin": "https://evil.example"},
		form:   url.Values{"username": {adaEmail}, "password": {adaPassword}}})
	c.do(422, oaCall{method: "POST", path: "/v1/auth/login", code: "validation_failed",
		json: map[string]any{"email": adaEmail}})
	c.do(415, oaCall{method: "POST", path: "/v1/auth/login", code: "unsupported_media_type",
		raw: "username=a&password=b", ctype: "text/plain"})

	// Sign-in, mobile mode.
	mobile := c.do(200, oaCall{method: "POST", path: "/v1/auth/login-mobile",
		json: map[string]any{"email": adaEmail, "password": adaPassword, "device_id": "phone-1",
			"device_name": "Ada's phone"}})
	mobileRefresh := mobile.str("refresh_token")
	c.do(401, oaCall{method: "POST", path: "/v1/auth/login-mobile", code: "invalid_credentials",
		form: url.Values{"username": {adaEmail}, "password": {"not the password"}}})
	c.do(422, oaCall{method: "POST", path: "/v1/auth/login-mobile", code: "malformed_body",
		raw: `{"email": 1}`, ctype: "application/json"})

	// Refresh, both modes.
	c.do(200, oaCall{method: "POST", path: "/v1/auth/refresh", client: browser})
	c.do(401, oaCall{method: "POST", path: "/v1/auth/refresh", code: "missing_refresh_token"})
	c.do(403, oaCall{method: "POST", path: "/v1/auth/refresh", client: browser, code: "cross_site_request",
		header: map[string]string{"Sec-Fetch-Site": "cross-site"}})
	carol := latchkeytest.NewUser(t, e)
	cookie := func(token string) map[string]string {
		return map[string]string{"Cookie": httpapi.RefreshCookie + "=" + token}
	}
	_, expired := latchkeytest.NewRefreshToken(t, e, carol, latchkeytest.ExpiresIn(-time.Hour))
	c.do(401, oaCall{method: "POST", path: "/v1/auth/refresh", header: cookie(expired), code: "token_expired"})
	_, revoked := latchkeytest.NewRefreshToken(t, e, carol, latchkeytest.Revoked())
	c.do(401, oaCall{method: "POST", path: "/v1/auth/refresh", header: cookie(revoked), code: "token_revoked"})
	rotated, _ := latchkeytest.NewRefreshToken(t, e, carol, latchkeytest.Rotated(2))
	spent := latchkeytest.SpentTokens(t, e, rotated)[0]
	c.do(401, oaCall{method: "POST", path: "/v1/auth/refresh", header: cookie(spent), code: "token_reused"})
	_, carolMobile := latchkeytest.NewRefreshToken(t, e, carol, latchkeytest.Mobile())
	c.do(401, oaCall{method: "POST", path: "/v1/auth/refresh", header: cookie(carolMobile), code: "invalid_token"})

	next := c.do(200, oaCall{method: "POST", path: "/v1/auth/refresh-mobile",
		json: map[string]any{"refresh_token": mobileRefresh, "device_id": "phone-1"}})
	mobileRefresh = next.str("refresh_token")
	_, carolCookie := latchkeytest.NewRefreshToken(t, e, carol)
	c.do(401, oaCall{method: "POST", path: "/v1/auth/refresh-mobile", code: "invalid_token",
		json: map[string]any{"refresh_token": carolCookie}})
	c.do(401, oaCall{method: "POST", path: "/v1/auth/refresh-mobile", code: "missing_refresh_token",
		json: map[string]any{}})
	c.do(422, oaCall{method: "POST", path: "/v1/auth/refresh-mobile", code: "malformed_body",
		raw: `["lkr_"]`, ctype: "application/json"})
	c.do(415, oaCall{method: "POST", path: "/v1/auth/refresh-mobile", code: "unsupported_media_type",
		form: url.Values{"refresh_token": {mobileRefresh}}})

	// The signed-in user and the profile.
	c.do(200, oaCall{method: "GET", path: "/v1/auth/me", bearer: adaTok})
	c.do(401, oaCall{method: "GET", path: "/v1/auth/me", code: "not_authenticated"})
	c.do(401, oaCall{method: "GET", path: "/v1/auth/me", bearer: "not-a-jwt", code: "invalid_token"})
	c.do(200, oaCall{method: "GET", path: "/v1/users/" + adaID, bearer: adaTok})
	c.do(200, oaCall{method: "GET", path: "/v1/users/" + adaID, bearer: adminTok})
	c.do(404, oaCall{method: "GET", path: "/v1/users/" + admin.ID.String(), bearer: adaTok, code: "not_found"})
	c.do(422, oaCall{method: "GET", path: "/v1/users/not-a-uuid", bearer: adaTok, code: "validation_failed"})
	c.do(401, oaCall{method: "GET", path: "/v1/users/" + adaID, code: "not_authenticated"})
	c.do(200, oaCall{method: "PATCH", path: "/v1/users/me", bearer: adaTok,
		json: map[string]any{"full_name": "Ada King"}})
	adaEmail = "ada.king@example.com"
	c.do(200, oaCall{method: "PATCH", path: "/v1/users/me", bearer: adaTok,
		json: map[string]any{"email": adaEmail, "current_password": adaPassword}})
	c.do(401, oaCall{method: "PATCH", path: "/v1/users/me", bearer: adaTok, code: "invalid_credentials",
		json: map[string]any{"email": "ada@example.org", "current_password": "not the password"}})
	c.do(422, oaCall{method: "PATCH", path: "/v1/users/me", bearer: adaTok, code: "validation_failed",
		json: map[string]any{"email": "ada@example.org"}})
	c.do(409, oaCall{method: "PATCH", path: "/v1/users/me", bearer: adaTok, code: "email_taken",
		json: map[string]any{"email": admin.Email, "current_password": adaPassword}})
	c.do(401, oaCall{method: "PATCH", path: "/v1/users/me", code: "not_authenticated",
		json: map[string]any{"full_name": "Nobody"}})

	// Sessions.
	list := c.do(200, oaCall{method: "GET", path: "/v1/auth/sessions", bearer: adaTok})
	var mobileSession string
	sessions, _ := list.obj["sessions"].([]any)
	for _, s := range sessions {
		if m, _ := s.(map[string]any); m["mode"] == "mobile" {
			mobileSession, _ = m["id"].(string)
		}
	}
	if mobileSession == "" {
		t.Fatalf("GET /v1/auth/sessions: no mobile session in %s", list.body)
	}
	c.do(401, oaCall{method: "GET", path: "/v1/auth/sessions", code: "not_authenticated"})
	c.do(204, oaCall{method: "DELETE", path: "/v1/auth/sessions/" + mobileSession, bearer: adaTok})
	c.do(404, oaCall{method: "DELETE", path: "/v1/auth/sessions/" + mobileSession, bearer: adaTok, code: "not_found"})
	c.do(404, oaCall{method: "DELETE", path: "/v1/auth/sessions/" + rotated.ID.String(), bearer: adaTok, code: "not_found"})
	c.do(422, oaCall{method: "DELETE", path: "/v1/auth/sessions/nope", bearer: adaTok, code: "validation_failed"})
	c.do(401, oaCall{method: "DELETE", path: "/v1/auth/sessions/" + mobileSession, code: "not_authenticated"})
	c.do(200, oaCall{method: "POST", path: "/v1/auth/login-mobile",
		json: map[string]any{"email": adaEmail, "password": adaPassword}})
	c.do(422, oaCall{method: "DELETE", path: "/v1/auth/sessions", bearer: adaTok, code: "validation_failed"})
	ended := c.do(200, oaCall{method: "DELETE", path: "/v1/auth/sessions?others=true", bearer: adaTok})
	if n, _ := ended.obj["revoked_sessions"].(float64); n < 1 {
		t.Errorf("DELETE /v1/auth/sessions?others=true: revoked_sessions = %v, want at least 1", ended.obj["revoked_sessions"])
	}
	c.do(401, oaCall{method: "DELETE", path: "/v1/auth/sessions?others=true", code: "not_authenticated"})

	// Admin.
	c.do(200, oaCall{method: "GET", path: "/v1/admin/users", bearer: adminTok})
	c.do(200, oaCall{method: "GET", path: "/v1/admin/users?page=1&size=10&email=EXAMPLE", bearer: adminTok})
	c.do(403, oaCall{method: "GET", path: "/v1/admin/users", bearer: adaTok, code: "forbidden"})
	c.do(401, oaCall{method: "GET", path: "/v1/admin/users", code: "not_authenticated"})
	c.do(422, oaCall{method: "GET", path: "/v1/admin/users?size=0", bearer: adminTok, code: "validation_failed"})
	newUser := map[string]any{"email": "linus@example.com", "password": "tab-completion rules 1991",
		"full_name": "Linus", "role": "admin", "is_verified": true}
	linus := c.do(201, oaCall{method: "POST", path: "/v1/admin/users", bearer: adminTok, json: newUser}).str("id")
	c.do(409, oaCall{method: "POST", path: "/v1/admin/users", bearer: adminTok, json: newUser, code: "email_taken"})
	c.do(403, oaCall{method: "POST", path: "/v1/admin/users", bearer: adaTok, json: newUser, code: "forbidden"})
	c.do(422, oaCall{method: "POST", path: "/v1/admin/users", bearer: adminTok, code: "validation_failed",
		json: map[string]any{"email": "root@example.com", "password": "tab-completion rules 1991", "role": "root"}})
	c.do(422, oaCall{method: "POST", path: "/v1/admin/users", bearer: adminTok, code: "weak_password",
		json: map[string]any{"email": "root@example.com", "password": "password1"}})
	unknown := uuid.New().String()
	c.do(200, oaCall{method: "GET", path: "/v1/admin/users/" + linus, bearer: adminTok})
	c.do(404, oaCall{method: "GET", path: "/v1/admin/users/" + unknown, bearer: adminTok, code: "not_found"})
	c.do(422, oaCall{method: "GET", path: "/v1/admin/users/nope", bearer: adminTok, code: "validation_failed"})
	c.do(403, oaCall{method: "GET", path: "/v1/admin/users/" + linus, bearer: adaTok, code: "forbidden"})
	c.do(200, oaCall{method: "PATCH", path: "/v1/admin/users/" + linus, bearer: adminTok,
		json: map[string]any{"role": "user", "full_name": "Linus T.", "is_active": nil}})
	c.do(422, oaCall{method: "PATCH", path: "/v1/admin/users/" + linus, bearer: adminTok, code: "validation_failed",
		json: map[string]any{"role": "root"}})
	c.do(409, oaCall{method: "PATCH", path: "/v1/admin/users/" + admin.ID.String(), bearer: adminTok,
		code: "self_modification", json: map[string]any{"is_active": false}})
	c.do(404, oaCall{method: "PATCH", path: "/v1/admin/users/" + unknown, bearer: adminTok, code: "not_found",
		json: map[string]any{"full_name": "Nobody"}})
	c.do(403, oaCall{method: "PATCH", path: "/v1/admin/users/" + linus, bearer: adaTok, code: "forbidden",
		json: map[string]any{"role": "admin"}})
	c.do(403, oaCall{method: "DELETE", path: "/v1/admin/users/" + linus, bearer: adaTok, code: "forbidden"})
	c.do(204, oaCall{method: "DELETE", path: "/v1/admin/users/" + linus, bearer: adminTok})
	c.do(404, oaCall{method: "DELETE", path: "/v1/admin/users/" + linus, bearer: adminTok, code: "not_found"})
	c.do(409, oaCall{method: "DELETE", path: "/v1/admin/users/" + admin.ID.String(), bearer: adminTok,
		code: "self_modification"})
	c.do(422, oaCall{method: "DELETE", path: "/v1/admin/users/nope", bearer: adminTok, code: "validation_failed"})
	c.do(401, oaCall{method: "DELETE", path: "/v1/admin/users/" + linus, code: "not_authenticated"})

	// A deactivated user's tokens stop working at once.
	dave := latchkeytest.NewUser(t, e)
	daveLogin := c.do(200, oaCall{method: "POST", path: "/v1/auth/login-mobile",
		json: map[string]any{"email": dave.Email, "password": latchkeytest.DefaultPassword}})
	c.do(200, oaCall{method: "PATCH", path: "/v1/admin/users/" + dave.ID.String(), bearer: adminTok,
		json: map[string]any{"is_active": false}})
	c.do(401, oaCall{method: "GET", path: "/v1/auth/me", bearer: daveLogin.str("access_token"), code: "user_inactive"})
	c.do(401, oaCall{method: "POST", path: "/v1/auth/refresh-mobile", code: "token_revoked",
		json: map[string]any{"refresh_token": daveLogin.str("refresh_token")}})

	// RFC 7662 introspection and RFC 7009 revocation.
	active := c.do(200, oaCall{method: "POST", path: "/oauth/introspect", bearer: adminTok,
		form: url.Values{"token": {adaTok}}})
	if active.obj["active"] != true || active.obj["token_type"] != "access_token" {
		t.Errorf("POST /oauth/introspect (access token): got %s, want an active access token", active.body)
	}
	active = c.do(200, oaCall{method: "POST", path: "/oauth/introspect", bearer: secret,
		form: url.Values{"token": {carolMobile}, "token_type_hint": {"refresh_token"}}})
	if active.obj["active"] != true || active.obj["token_type"] != "refresh_token" {
		t.Errorf("POST /oauth/introspect (refresh token): got %s, want an active refresh token", active.body)
	}
	inactive := c.do(200, oaCall{method: "POST", path: "/oauth/introspect", bearer: secret,
		form: url.Values{"token": {"lkr_nothing"}}})
	if got, want := strings.TrimSpace(string(inactive.body)), `{"active":false}`; got != want {
		t.Errorf("POST /oauth/introspect (unknown token): body = %s, want %s", got, want)
	}
	c.do(400, oaCall{method: "POST", path: "/oauth/introspect", bearer: adminTok, form: url.Values{},
		code: "invalid_request"})
	c.do(401, oaCall{method: "POST", path: "/oauth/introspect", form: url.Values{"token": {adaTok}},
		code: "not_authenticated"})
	c.do(403, oaCall{method: "POST", path: "/oauth/introspect", bearer: adaTok, form: url.Values{"token": {adaTok}},
		code: "forbidden"})
	c.do(415, oaCall{method: "POST", path: "/oauth/introspect", bearer: adminTok,
		json: map[string]any{"token": adaTok}, code: "unsupported_media_type"})
	c.do(422, oaCall{method: "POST", path: "/oauth/introspect", bearer: adminTok, raw: "token=%zz",
		ctype: "application/x-www-form-urlencoded", code: "malformed_body"})

	c.do(200, oaCall{method: "POST", path: "/oauth/revoke", form: url.Values{"token": {carolMobile}}})
	c.do(200, oaCall{method: "POST", path: "/oauth/revoke", form: url.Values{"token": {"lkr_nothing"}}})
	c.do(400, oaCall{method: "POST", path: "/oauth/revoke", form: url.Values{}, code: "invalid_request"})
	c.do(415, oaCall{method: "POST", path: "/oauth/revoke", json: map[string]any{"token": carolMobile},
		code: "unsupported_media_type"})
	c.do(422, oaCall{method: "POST", path: "/oauth/revoke", raw: "token=%zz",
		ctype: "application/x-www-form-urlencoded", code: "malformed_body"})
	c.do(413, oaCall{method: "POST", path: "/oauth/revoke", raw: "token=" + strings.Repeat("a", 70<<10),
		ctype: "application/x-www-form-urlencoded", code: "body_too_large"})

	// The revocation feed serves revocations once they have settled.
	e.Clock.Advance(latchkey.RevocationFeedDelay + time.Second)
	first := c.do(200, oaCall{method: "GET", path: "/v1/auth/revocations?limit=1", bearer: secret})
	if first.obj["has_more"] != true {
		t.Errorf("GET /v1/auth/revocations?limit=1: has_more = %v, want true; body: %s", first.obj["has_more"], first.body)
	}
	c.do(200, oaCall{method: "GET", path: "/v1/auth/revocations?limit=1000&since=" + url.QueryEscape(first.str("cursor")),
		bearer: adminTok})
	c.do(200, oaCall{method: "GET", path: "/v1/auth/revocations", bearer: adminTok})
	c.do(422, oaCall{method: "GET", path: "/v1/auth/revocations?since=not-a-cursor", bearer: adminTok,
		code: "validation_failed"})
	c.do(422, oaCall{method: "GET", path: "/v1/auth/revocations?limit=0", bearer: adminTok, code: "validation_failed"})
	c.do(403, oaCall{method: "GET", path: "/v1/auth/revocations", bearer: adaTok, code: "forbidden"})
	c.do(401, oaCall{method: "GET", path: "/v1/auth/revocations", code: "not_authenticated"})

	// Changing the password.
	change := "/v1/auth/change-password"
	c.do(401, oaCall{method: "POST", path: change, bearer: adaTok, code: "invalid_credentials",
		json: map[string]any{"current_password": "not the password", "new_password": newPassword}})
	c.do(422, oaCall{method: "POST", path: change, bearer: adaTok, code: "weak_password",
		json: map[string]any{"current_password": adaPassword, "new_password": "password1"}})
	c.do(422, oaCall{method: "POST", path: change, bearer: adaTok, code: "validation_failed",
		json: map[string]any{"current_password": adaPassword, "new_password": "short"}})
	c.do(422, oaCall{method: "POST", path: change, bearer: adaTok, code: "validation_failed",
		json: map[string]any{"new_password": newPassword}})
	c.do(415, oaCall{method: "POST", path: change, bearer: adaTok, code: "unsupported_media_type",
		form: url.Values{"current_password": {adaPassword}}})
	c.do(401, oaCall{method: "POST", path: change, code: "not_authenticated",
		json: map[string]any{"current_password": adaPassword, "new_password": newPassword}})
	c.do(204, oaCall{method: "POST", path: change, bearer: adaTok,
		json: map[string]any{"current_password": adaPassword, "new_password": newPassword}})
	c.do(401, oaCall{method: "GET", path: "/v1/auth/me", bearer: adaTok, code: "token_revoked"})

	// Signing out.
	c.do(403, oaCall{method: "POST", path: "/v1/auth/logout", client: browser, code: "cross_site_request",
		header: map[string]string{"Origin": "https://evil.example"}})
	c.do(204, oaCall{method: "POST", path: "/v1/auth/logout", client: browser})
	c.do(401, oaCall{method: "POST", path: "/v1/auth/logout", client: browser, code: "missing_refresh_token"})
	c.do(204, oaCall{method: "POST", path: "/v1/auth/logout", json: map[string]any{"refresh_token": mobileRefresh}})
	c.do(204, oaCall{method: "POST", path: "/v1/auth/logout", json: map[string]any{"refresh_token": "lkr_nothing"}})
	c.do(401, oaCall{method: "POST", path: "/v1/auth/logout", json: map[string]any{}, code: "missing_refresh_token"})
	c.do(422, oaCall{method: "POST", path: "/v1/auth/logout", raw: "{", ctype: "application/json", code: "malformed_body"})
	c.do(415, oaCall{method: "POST", path: "/v1/auth/logout", raw: "refresh_token=x", ctype: "text/plain",
		code: "unsupported_media_type"})

	carolTok := c.do(200, oaCall{method: "POST", path: "/v1/auth/login-mobile",
		json: map[string]any{"email": carol.Email, "password": latchkeytest.DefaultPassword}}).str("access_token")
	all := c.do(200, oaCall{method: "POST", path: "/v1/auth/logout-all", bearer: carolTok})
	if n, _ := all.obj["revoked_sessions"].(float64); n < 1 {
		t.Errorf("POST /v1/auth/logout-all: revoked_sessions = %v, want at least 1", all.obj["revoked_sessions"])
	}
	c.do(401, oaCall{method: "POST", path: "/v1/auth/logout-all", bearer: carolTok, code: "token_revoked"})
	c.do(401, oaCall{method: "POST", path: "/v1/auth/logout-all", code: "not_authenticated"})

	// Access tokens expire.
	e.Clock.Advance(time.Hour)
	c.do(401, oaCall{method: "GET", path: "/v1/auth/me", bearer: adminTok, code: "token_expired"})

	t.Run("rate limits", func(t *testing.T) {
		one := httpapi.Rate{PerMinute: 1, Burst: 1}
		srv := latchkeytest.NewServer(t, latchkeytest.WithAPI(func(opts *httpapi.Options) {
			opts.Limits = httpapi.Limits{LoginPerIP: one, RegisterPerIP: one, RefreshPerIP: one}
		}))
		c := &oaClient{t: t, o: o, srv: srv, seen: seen}
		reg := func(email string) oaCall {
			return oaCall{method: "POST", path: "/v1/users", json: map[string]any{"email": email, "password": adaPassword}}
		}
		c.do(201, reg("first@example.com"))
		limited := reg("second@example.com")
		limited.code = "rate_limited"
		c.do(429, limited)

		login := url.Values{"username": {"first@example.com"}, "password": {adaPassword}}
		c.do(200, oaCall{method: "POST", path: "/v1/auth/login", form: login})
		c.do(429, oaCall{method: "POST", path: "/v1/auth/login", form: login, code: "rate_limited"})
		c.do(429, oaCall{method: "POST", path: "/v1/auth/login-mobile", form: login, code: "rate_limited"})

		c.do(401, oaCall{method: "POST", path: "/v1/auth/refresh", header: cookie("lkr_nothing"), code: "invalid_token"})
		c.do(429, oaCall{method: "POST", path: "/v1/auth/refresh", header: cookie("lkr_nothing"), code: "rate_limited"})
		c.do(429, oaCall{method: "POST", path: "/v1/auth/refresh-mobile", code: "rate_limited",
			json: map[string]any{"refresh_token": "lkr_nothing"}})
	})

	t.Run("readiness", func(t *testing.T) {
		// A server on the real clock is ready.
		live := latchkeytest.NewServer(t, latchkeytest.WithEngine(latchkeytest.WithConfig(func(cfg *latchkey.Config) {
			cfg.Now = time.Now
		})))
		(&oaClient{t: t, o: o, srv: live, seen: seen}).do(200, oaCall{method: "GET", path: "/health/ready"})

		// One whose clock is an hour off is not; one whose database is
		// gone is not either, and its authenticated endpoints fail with
		// an internal error.
		srv := latchkeytest.NewServer(t)
		c := &oaClient{t: t, o: o, srv: srv, seen: seen}
		srv.Engine.Clock.Set(time.Now().Add(time.Hour))
		c.do(503, oaCall{method: "GET", path: "/health/ready", code: "clock_skew"})
		u := latchkeytest.NewUser(t, srv.Engine)
		tok := c.do(200, oaCall{method: "POST", path: "/v1/auth/login-mobile",
			json: map[string]any{"email": u.Email, "password": latchkeytest.DefaultPassword}}).str("access_token")
		if err := srv.Engine.Store.Close(); err != nil {
			t.Fatal(err)
		}
		c.do(503, oaCall{method: "GET", path: "/health/ready", code: "not_ready"})
		c.do(500, oaCall{method: "GET", path: "/v1/auth/me", bearer: tok, code: "internal_error"})
	})

	// Every route was exercised.
	for _, r := range srv.API.Routes() {
		if len(seen[oaNormalizeRoute(r)]) == 0 {
			t.Errorf("route %q was not exercised by TestOpenAPIConformance", r)
		}
	}
	for _, op := range o.ops {
		responses, _ := op.node["responses"].(map[string]any)
		var missed []string
		for _, code := range slices.Sorted(maps.Keys(responses)) {
			if n, err := strconv.Atoi(code); err == nil && !seen[op.route()][n] {
				missed = append(missed, code)
			}
		}
		if len(missed) > 0 {
			t.Logf("%s: documented but not exercised: %s", op.route(), strings.Join(missed, ", "))
		}
	}
}
