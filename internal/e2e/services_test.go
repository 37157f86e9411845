package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/storage"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
)

// gcpProject is the emulator's project.
const gcpProject = "e2e-project"

// repoRoot walks up from the working directory to the directory of go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("failed to get the working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("failed to find go.mod above the working directory")
		}
		dir = parent
	}
}

// buildBinaries builds the server and fake-gcs-server (a module dependency,
// so from the module cache, offline) into dir, in parallel. Under -race the
// server is built with -race too.
func buildBinaries(t *testing.T, root, dir string) (server, fakeGCS string) {
	t.Helper()
	server = filepath.Join(dir, "server")
	fakeGCS = filepath.Join(dir, "fake-gcs-server")
	serverArgs := []string{"build", "-o", server}
	if raceEnabled {
		serverArgs = append(serverArgs, "-race")
	}
	serverArgs = append(serverArgs, "./server")
	jobs := [][]string{serverArgs, {"build", "-o", fakeGCS, "github.com/fsouza/fake-gcs-server"}}
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	start := time.Now()
	for i, args := range jobs {
		wg.Go(func() {
			cmd := exec.Command("go", args...)
			cmd.Dir = root
			out, err := cmd.CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("failed to build the binaries: %v", err)
	}
	t.Logf("built server (race=%v) and fake-gcs-server in %s", raceEnabled, time.Since(start).Round(time.Millisecond))
	return server, fakeGCS
}

// baseEnv is the environment every child gets: a PATH, and a HOME of its own
// so that no user credentials or gcloud configuration leak in.
func baseEnv(home string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"TMPDIR=" + os.TempDir(),
	}
}

// gcloudEnv is the environment of a gcloud command: baseEnv, and a gcloud
// configuration of its own under home that never prompts and never looks
// for updates.
func gcloudEnv(home string) []string {
	return append(baseEnv(home),
		"CLOUDSDK_CONFIG="+filepath.Join(home, "gcloud-config"),
		"CLOUDSDK_CORE_DISABLE_PROMPTS=1",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=1",
		"CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true",
	)
}

// waitHTTP polls url until it answers 200 or timeout passes; it fails early
// when p exits.
func waitHTTP(ctx context.Context, t *testing.T, p *proc, url string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := start.Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			t.Fatalf("%s exited before it was ready (%v); see its log below", p.name, p.waitErr)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatalf("failed to create request: %v", err)
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s was not ready within %s (last: %s)", url, timeout, last)
	return 0
}

// fakeGCS is a standalone fake-gcs-server.
type fakeGCS struct {
	proc   *proc
	host   string // 127.0.0.1:PORT, the STORAGE_EMULATOR_HOST
	client *storage.Client
}

func startFakeGCS(ctx context.Context, t *testing.T, ps *procs, bin, home, bucket string) *fakeGCS {
	t.Helper()
	port := strconv.Itoa(collecttest.FreePort(t))
	host := "127.0.0.1:" + port
	p := ps.start("fake-gcs-server", baseEnv(home), home, bin,
		"-backend", "memory", "-scheme", "http", "-host", "127.0.0.1", "-port", port,
		"-public-host", host, "-log-level", "warn")
	took := waitHTTP(ctx, t, p, "http://"+host+"/_internal/healthcheck", 30*time.Second)
	t.Logf("fake-gcs-server ready on %s after %s", host, took.Round(time.Millisecond))

	body := strings.NewReader(`{"name":"` + bucket + `"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+host+"/storage/v1/b", body)
	if err != nil {
		t.Fatalf("failed to create request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("failed to create bucket %s: %v", bucket, err)
	}
	msg, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("failed to create bucket %s: %s: %s", bucket, resp.Status, msg)
	}

	client, err := storage.NewClient(ctx,
		option.WithEndpoint("http://"+host+"/storage/v1/"),
		option.WithoutAuthentication())
	if err != nil {
		t.Fatalf("failed to create storage client: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return &fakeGCS{proc: p, host: host, client: client}
}

// emulator is the real Pub/Sub emulator of the Google Cloud CLI.
type emulator struct {
	proc   *proc
	host   string // 127.0.0.1:PORT, the PUBSUB_EMULATOR_HOST
	client *pubsub.Client
}

func startEmulator(ctx context.Context, t *testing.T, ps *procs, home string) *emulator {
	t.Helper()
	port := strconv.Itoa(collecttest.FreePort(t))
	host := "127.0.0.1:" + port
	dataDir := filepath.Join(home, "pubsub-data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatalf("failed to create emulator data dir: %v", err)
	}
	env := gcloudEnv(home)
	if jh := os.Getenv("JAVA_HOME"); jh != "" {
		env = append(env, "JAVA_HOME="+jh)
	}
	p := ps.start("pubsub-emulator", env, home, "gcloud",
		"beta", "emulators", "pubsub", "start",
		"--host-port="+host, "--project="+gcpProject, "--data-dir="+dataDir, "--verbosity=warning")
	took := waitHTTP(ctx, t, p, "http://"+host+"/", 90*time.Second)
	t.Logf("Pub/Sub emulator ready on %s after %s", host, took.Round(time.Millisecond))

	client, err := pubsub.NewClient(ctx, gcpProject,
		option.WithEndpoint(host),
		option.WithoutAuthentication(),
		option.WithTelemetryDisabled(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatalf("failed to create pubsub client: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return &emulator{proc: p, host: host, client: client}
}

// createPush creates topic and a push subscription to endpoint, configured
// like the Terraform's (a generous ack deadline above the run timeout, a
// retry policy) but with a short backoff.
func (e *emulator) createPush(ctx context.Context, t *testing.T, topic, sub, endpoint string) {
	t.Helper()
	if _, err := e.client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatalf("failed to create topic %s: %v", topic, err)
	}
	_, err := e.client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:               sub,
		Topic:              topic,
		PushConfig:         &pubsubpb.PushConfig{PushEndpoint: endpoint},
		AckDeadlineSeconds: 120,
		RetryPolicy: &pubsubpb.RetryPolicy{
			MinimumBackoff: durationpb.New(time.Second),
			MaximumBackoff: durationpb.New(5 * time.Second),
		},
	})
	if err != nil {
		t.Fatalf("failed to create push subscription %s: %v", sub, err)
	}
}

// ticker publishes "{}" to a topic at a fixed interval, like Cloud Scheduler.
type ticker struct {
	mu     sync.Mutex
	sent   int
	failed int
	lastEr error

	stop chan struct{}
	done chan struct{}
}

func startTicker(ctx context.Context, t *testing.T, e *emulator, topic string, every time.Duration) *ticker {
	t.Helper()
	pub := e.client.Publisher(topic)
	tk := &ticker{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tk.done)
		defer pub.Stop()
		tm := time.NewTicker(every)
		defer tm.Stop()
		for {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := pub.Publish(pctx, &pubsub.Message{Data: []byte("{}")}).Get(pctx)
			cancel()
			tk.mu.Lock()
			if err != nil {
				tk.failed++
				tk.lastEr = err
			} else {
				tk.sent++
			}
			tk.mu.Unlock()
			select {
			case <-tk.stop:
				return
			case <-ctx.Done():
				return
			case <-tm.C:
			}
		}
	}()
	t.Cleanup(tk.close)
	return tk
}

func (tk *ticker) close() {
	select {
	case <-tk.stop:
	default:
		close(tk.stop)
	}
	<-tk.done
}

func (tk *ticker) counts() (sent, failed int, last error) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return tk.sent, tk.failed, tk.lastEr
}

// serverProc is one run of the server binary; restarts keep the port.
type serverProc struct {
	bin  string
	env  []string
	dir  string
	port int
	runs int
	proc *proc
}

func (s *serverProc) url() string { return "http://127.0.0.1:" + strconv.Itoa(s.port) }

// start starts the server and waits for GET /health 200.
func (s *serverProc) start(ctx context.Context, t *testing.T, ps *procs) {
	t.Helper()
	s.runs++
	s.proc = ps.start("server-"+strconv.Itoa(s.runs), s.env, s.dir, s.bin)
	took := waitHTTP(ctx, t, s.proc, s.url()+"/health", 30*time.Second)
	t.Logf("server run %d: first /health 200 after %s", s.runs, took.Round(time.Millisecond))
}

// logs returns the concatenated logs of every run of the server.
func (s *serverProc) logs(t *testing.T, ps *procs) []byte {
	t.Helper()
	var all []byte
	for i := 1; i <= s.runs; i++ {
		data, err := os.ReadFile(filepath.Join(ps.logDir, "server-"+strconv.Itoa(i)+".log"))
		if err != nil {
			t.Errorf("failed to read server log: %v", err)
			continue
		}
		all = append(all, data...)
	}
	return all
}

// lastLog returns the log of the server's latest run.
func (s *serverProc) lastLog(t *testing.T, ps *procs) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(ps.logDir, "server-"+strconv.Itoa(s.runs)+".log"))
	if err != nil {
		t.Errorf("failed to read server log: %v", err)
	}
	return data
}

// raceReports returns the race detector's reports in the server's logs.
func raceReports(logs []byte) []string {
	var out []string
	for rest := logs; ; {
		i := bytes.Index(rest, []byte("WARNING: DATA RACE"))
		if i < 0 {
			return out
		}
		rest = rest[i:]
		end := bytes.Index(rest, []byte("\n==================\n"))
		if end < 0 {
			end = min(len(rest), 4000)
		}
		out = append(out, string(rest[:end]))
		rest = rest[end:]
		if len(rest) > 0 {
			rest = rest[1:]
		}
	}
}
