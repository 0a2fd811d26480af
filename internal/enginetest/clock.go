package enginetest

import (
	"time"

	"github.com/latchkey-dev/latchkey/latchkeytest"
)

// Clock is the test kit's settable clock, for the engine's Config.Now.
type Clock = latchkeytest.Clock

// NewClock returns a clock at a fixed instant with a fractional second, so
// that microsecond truncation is exercised.
func NewClock() *Clock {
	c := &Clock{}
	c.Set(time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC))
	return c
}
