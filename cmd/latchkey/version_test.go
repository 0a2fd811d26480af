package main

import (
	"regexp"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestVersion(t *testing.T) {
	code, stdout, stderr := runCLI(t, cancelled(t), nil, "version")
	// A test binary has no module version: "(devel)".
	if want := regexp.MustCompile(`^latchkey \S+ go\d+\.\d+\S*\n$`); code != 0 || stderr != "" || !want.MatchString(stdout) {
		t.Errorf("version: exit %d, stdout %q, stderr %q; want a line matching %s", code, stdout, stderr, want)
	}

	tests := []struct {
		name               string
		info               *debug.BuildInfo
		ok                 bool
		version, goVersion string
	}{
		{"release", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/latchkey-dev/latchkey", Version: "v1.2.3"}}, true, "v1.2.3", "go1.26.8"},
		{"checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, true, "(devel)", "go1.26.8"},
		{"empty version", &debug.BuildInfo{GoVersion: "go1.26.8"}, true, "(devel)", "go1.26.8"},
		{"no build info", nil, false, "(devel)", runtime.Version()},
	}
	for _, tt := range tests {
		v, g := buildVersion(func() (*debug.BuildInfo, bool) { return tt.info, tt.ok })
		if v != tt.version || g != tt.goVersion {
			t.Errorf("%s: %q %q, want %q %q", tt.name, v, g, tt.version, tt.goVersion)
		}
	}
}
