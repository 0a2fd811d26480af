package latchkey

import (
	"fmt"
	"log/slog"
)

const redacted = "[redacted]"

// Token is a bearer credential (an access or a refresh token). It prints,
// logs and marshals as "[redacted]" so that it cannot leak through fmt, slog
// or encoding/json by accident; convert it with string(t) where the raw value
// is really needed, such as an HTTP response body or cookie.
type Token string

// String implements fmt.Stringer with a redacted value.
func (Token) String() string { return redacted }

// GoString implements fmt.GoStringer with a redacted value.
func (Token) GoString() string { return redacted }

// Format redacts the token for every fmt verb, including %x and %q.
func (Token) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer with a redacted value.
func (Token) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON marshals the token as "[redacted]".
func (Token) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
