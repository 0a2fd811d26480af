package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

func versionCommand() *command {
	return &command{
		name:    "version",
		summary: "print the version",
		help: `Print the module version recorded in this binary and the Go version that
built it, such as "latchkey v1.2.0 go1.26.8". 'go install' of a tagged
version records that version, and 'go build' in a git checkout may record
a pseudo-version of the commit; a binary with none recorded (go run, a
build outside version control) says "(devel)".`,
		run: runVersion,
	}
}

func runVersion(ctx context.Context, m *Main, s *settings) error {
	version, goVersion := buildVersion(debug.ReadBuildInfo)
	fmt.Fprintf(m.Stdout, "latchkey %s %s\n", version, goVersion)
	return nil
}

// buildVersion returns the main module's version and the Go version from
// the build information readBuildInfo returns (debug.ReadBuildInfo, which
// tests replace).
func buildVersion(readBuildInfo func() (*debug.BuildInfo, bool)) (version, goVersion string) {
	version, goVersion = "(devel)", runtime.Version()
	if info, ok := readBuildInfo(); ok {
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
	}
	return version, goVersion
}
