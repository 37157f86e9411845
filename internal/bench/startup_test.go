package bench

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
)

// Loose bounds, so that a regression fails (issue 6 targets: 100 ms, 40 MiB).
const (
	maxStartup = time.Second
	maxIdleRSS = 60 << 20
)

// buildServer builds the service binary into a temporary directory.
func buildServer(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "server")
	cmd := exec.Command("go", "build", "-o", bin, "../../server")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startServer starts the binary with a local configuration and returns the
// time from exec to the first 200 on /health, and the process.
func startServer(tb testing.TB, bin string) (time.Duration, *os.Process) {
	tb.Helper()
	port := collecttest.FreePort(tb)
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"PORT=" + strconv.Itoa(port),
		"PUSH_AUTH_DISABLED=true",
		"LOCAL_OUTPUT_DIR=" + tb.TempDir(),
		"SENTRY_ORG=acme",
		"SENTRY_AUTH_TOKEN=dummy-token",
		"SENTRY_API_BASE=http://127.0.0.1:9", // never called at start-up
		"LOG_LEVEL=warn",
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	pid := cmd.Process.Pid
	tb.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
		_ = cmd.Wait()
	})
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/health"
	hc := &http.Client{Timeout: time.Second}
	for time.Since(start) < 10*time.Second {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), cmd.Process
			}
		}
		time.Sleep(time.Millisecond) // polling a real process: real time
	}
	tb.Fatal("no 200 on /health within 10 s")
	return 0, nil
}

// vmRSS reads the resident set size of pid from /proc.
func vmRSS(tb testing.TB, pid int) int64 {
	tb.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		tb.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS in /proc status")
	return 0
}

// measureStartup starts the service, waits for /health, lets it idle and
// returns the start-up time and idle RSS.
func measureStartup(tb testing.TB, bin string) (time.Duration, int64) {
	tb.Helper()
	d, p := startServer(tb, bin)
	time.Sleep(500 * time.Millisecond) // let it settle: real process, real time
	rss := vmRSS(tb, p.Pid)
	_ = p.Kill()
	return d, rss
}

// TestStartupAndIdleRSS holds the service to loose bounds on start-up time
// (exec to first 200 on /health) and idle resident memory. It builds the
// binary, so it is skipped with -short.
func TestStartupAndIdleRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server binary")
	}
	t.Parallel()
	d, rss := measureStartup(t, buildServer(t))
	t.Logf("start-up to first /health: %s; idle RSS: %.1f MiB", d, float64(rss)/(1<<20))
	if d > maxStartup {
		t.Errorf("start-up took %s, want < %s", d, maxStartup)
	}
	if rss > maxIdleRSS {
		t.Errorf("idle RSS %.1f MiB, want < %d MiB", float64(rss)/(1<<20), maxIdleRSS>>20)
	}
}

// BenchmarkStartup reports start-up time to the first 200 on /health and
// idle RSS of the service binary (one op: one start).
//
//	go test ./internal/bench -run '^$' -bench Startup -benchtime 20x
func BenchmarkStartup(b *testing.B) {
	bin := buildServer(b)
	b.ResetTimer()
	var total time.Duration
	var maxRSS int64
	for range b.N {
		d, rss := measureStartup(b, bin)
		total += d
		maxRSS = max(maxRSS, rss)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms_to_health")
	b.ReportMetric(float64(maxRSS)/(1<<20), "idle_RSS_MiB")
	if total/time.Duration(b.N) > maxStartup || maxRSS > maxIdleRSS {
		b.Errorf("start-up %s or idle RSS %d MiB above the bounds", total/time.Duration(b.N), maxRSS>>20)
	}
}
