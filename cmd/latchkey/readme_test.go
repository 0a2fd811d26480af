package main

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeSession returns the shell block between the README's session markers.
func readmeSession(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- session:begin -->\\s*```sh\\n(.*?)```\\s*<!-- session:end -->").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no session block between <!-- session:begin --> and <!-- session:end -->")
	}
	return string(m[1])
}

// TestReadmeSession builds the binary, runs `latchkey serve` on a free port
// and plays the README's first session exactly as printed (register, sign in,
// refresh, me, logout), with curl, against it.
func TestReadmeSession(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Skip("needs bash and SIGTERM")
	}
	for _, tool := range []string{"bash", "curl", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the README session needs %s", tool)
		}
	}
	script := readmeSession(t)
	bin := buildBinary(t)
	isolate(t)
	work := t.TempDir()

	srv := exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
	srv.Dir, srv.Env = work, binaryEnv()
	pipe, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	srvErr := &syncBuffer{}
	srv.Stderr = srvErr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	kill := time.AfterFunc(binaryDeadline, func() { srv.Process.Kill() })
	defer kill.Stop()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			srv.Process.Kill()
			srv.Wait()
		}
	})
	first, _ := bufio.NewReader(pipe).ReadString('\n')
	m := regexp.MustCompile(`^latchkey listening on (http://127\.0\.0\.1:\d+)\n$`).FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("serve printed %q; stderr:\n%s", first, srvErr)
	}
	base := m[1]

	ctx, cancel := context.WithTimeout(t.Context(), binaryDeadline)
	defer cancel()
	// After the README's block, one more line of the test's own: the access
	// token of the ended session must no longer work.
	check := "\ncurl -s -o /dev/null -w '%{http_code}\\n' \"$BASE/v1/auth/me\" -H \"Authorization: Bearer $ACCESS\"\n"
	sh := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", script+check)
	sh.Dir, sh.Env = work, append(binaryEnv(), "BASE="+base)
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("the README session failed: %v\n%s\nserver stderr:\n%s", err, out, srvErr)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], `"email":"ada@example.com"`) ||
		!strings.Contains(lines[1], `"email":"ada@example.com"`) || lines[2] != "204" || lines[3] != "401" {
		t.Fatalf("the README session printed:\n%s\nwant the new user, the same user from /me, 204, then 401 for the ended session", out)
	}
	res, err := http.Get(base + "/health/ready")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("/health/ready after the session: %v %v", res, err)
	}
	res.Body.Close()

	srv.Process.Signal(syscall.SIGTERM)
	err = srv.Wait()
	stopped = true
	if err != nil {
		t.Fatalf("serve after SIGTERM: %v; stderr:\n%s", err, srvErr)
	}
}
