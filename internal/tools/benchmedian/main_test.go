package main

import (
	"strings"
	"testing"
)

func TestMedianAndRatio(t *testing.T) {
	in := `goos: linux
BenchmarkRefresh/sqlite-2   1000   300 ns/op   64 B/op   2 allocs/op
BenchmarkRefresh/sqlite-2   1000   100 ns/op   64 B/op   2 allocs/op
BenchmarkRefresh/sqlite-2   1000   200 ns/op   64 B/op   2 allocs/op
BenchmarkBaselineSHA256-2   9999    10 ns/op    0 B/op   0 allocs/op
PASS`
	var out strings.Builder
	if err := run(strings.NewReader(in), &out, "BenchmarkBaselineSHA256"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| Refresh/sqlite | 3 | 200 | 20 | 64 | 2 |", "| BaselineSHA256 | 1 | 10 | 1 | 0 | 0 |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(strings.NewReader("no benchmarks here"), &out, ""); err == nil {
		t.Error("input without benchmark lines: no error")
	}
}
