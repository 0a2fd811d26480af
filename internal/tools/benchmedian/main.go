// Command benchmedian reads `go test -bench` output (several runs of each
// benchmark, from -count) on standard input and prints a Markdown table of
// the median ns/op, B/op and allocs/op of each benchmark, with each median's
// ratio to the baseline benchmark named by -baseline, measured in the same
// run. docs/BENCHMARKS.md is made with it.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var line = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

type sample struct{ metrics map[string]float64 }

func main() {
	baseline := flag.String("baseline", "", "benchmark (without the -N suffix) that ratios are taken against")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *baseline); err != nil {
		fmt.Fprintln(os.Stderr, "benchmedian:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer, baseline string) error {
	var order []string
	runs := map[string][]sample{}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		m := line.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		s := sample{metrics: map[string]float64{}}
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			s.metrics[f[i+1]] = v
		}
		if _, ok := runs[m[1]]; !ok {
			order = append(order, m[1])
		}
		runs[m[1]] = append(runs[m[1]], s)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(order) == 0 {
		return fmt.Errorf("no benchmark lines on standard input")
	}
	median := func(name, unit string) (float64, bool) {
		var vs []float64
		for _, s := range runs[name] {
			if v, ok := s.metrics[unit]; ok {
				vs = append(vs, v)
			}
		}
		if len(vs) == 0 {
			return 0, false
		}
		slices.Sort(vs)
		if len(vs)%2 == 1 {
			return vs[len(vs)/2], true
		}
		return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2, true
	}
	base, haveBase := median(baseline, "ns/op")
	fmt.Fprintf(out, "| benchmark | runs | median ns/op | × %s | B/op | allocs/op |\n|---|---|---|---|---|---|\n",
		strings.TrimPrefix(baseline, "Benchmark"))
	for _, name := range order {
		ns, _ := median(name, "ns/op")
		ratio := "–"
		if haveBase && base > 0 {
			ratio = strconv.FormatFloat(ns/base, 'g', 3, 64)
		}
		b, _ := median(name, "B/op")
		a, _ := median(name, "allocs/op")
		fmt.Fprintf(out, "| %s | %d | %s | %s | %.0f | %.0f |\n", strings.TrimPrefix(name, "Benchmark"),
			len(runs[name]), strconv.FormatFloat(ns, 'f', 0, 64), ratio, b, a)
	}
	return nil
}
