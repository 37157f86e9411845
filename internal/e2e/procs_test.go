package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a child process started in its own process group, so that it and
// every child it spawns (gcloud runs java) are signalled together by pgid.
type proc struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	pgid    int

	done    chan struct{} // closed when the process has been reaped
	waitErr error         // set before done is closed

	stopOnce sync.Once
}

// procs tracks every process a test starts, stops them all in t.Cleanup
// (also on failure), and prints the tail of their logs when the test failed.
type procs struct {
	t      *testing.T
	logDir string

	mu   sync.Mutex
	all  []*proc
	logs []string // every log file, in start order
}

func newProcs(t *testing.T, logDir string) *procs {
	t.Helper()
	if logDir == "" {
		logDir = t.TempDir()
	} else if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatalf("failed to create log directory: %v", err)
	}
	ps := &procs{t: t, logDir: logDir}
	// Registered before any process is started, so it runs after their
	// stops (cleanups run last-in first-out): the logs are complete.
	t.Cleanup(func() {
		if t.Failed() {
			ps.dumpLogs()
		}
	})
	return ps
}

// start starts bin with args and exactly env (nothing is inherited), with
// stdout and stderr going to <logDir>/<name>.log. The process group is
// killed in t.Cleanup.
func (ps *procs) start(name string, env []string, dir, bin string, args ...string) *proc {
	t := ps.t
	t.Helper()
	logPath := filepath.Join(ps.logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatalf("failed to create log file for %s: %v", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		t.Fatalf("failed to start %s (%s): %v", name, bin, err)
	}
	p := &proc{name: name, logPath: logPath, cmd: cmd, pgid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.all = append(ps.all, p)
	ps.logs = append(ps.logs, logPath)
	ps.mu.Unlock()
	t.Cleanup(func() { p.stop(t, syscall.SIGTERM, 10*time.Second) })
	t.Logf("started %s: pid %d, log %s", name, p.pgid, logPath)
	return p
}

// exited reports whether the process has been reaped.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig to the process group, waits up to grace for the leader to
// exit, then SIGKILLs the group (whatever is left of it, e.g. a java child).
// It is idempotent.
func (p *proc) stop(t *testing.T, sig syscall.Signal, grace time.Duration) {
	p.stopOnce.Do(func() {
		if !p.exited() {
			if err := syscall.Kill(-p.pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
				t.Logf("failed to send %v to %s (pgid %d): %v", sig, p.name, p.pgid, err)
			}
			select {
			case <-p.done:
			case <-time.After(grace):
				t.Logf("%s did not exit within %s after %v; killing", p.name, grace, sig)
			}
		}
		// The group may outlive its leader (children): kill what is left.
		if err := syscall.Kill(-p.pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Logf("failed to kill %s's group (pgid %d): %v", p.name, p.pgid, err)
		}
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) was not reaped 10s after SIGKILL", p.name, p.pgid)
		}
	})
}

// kill SIGKILLs the process group at once (a crash) and waits until reaped.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.stop(t, syscall.SIGKILL, 10*time.Second)
}

// dumpLogs prints the tail of every log file.
func (ps *procs) dumpLogs() {
	ps.mu.Lock()
	logs := append([]string(nil), ps.logs...)
	ps.mu.Unlock()
	for _, path := range logs {
		ps.t.Logf("---- tail of %s ----\n%s", filepath.Base(path), tailFile(path, 60, 24<<10))
	}
}

// tailFile returns up to the last n lines (and at most max bytes) of path.
func tailFile(path string, n, maxBytes int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	if len(data) > maxBytes {
		data = data[len(data)-maxBytes:]
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
