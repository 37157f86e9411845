package e2e

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
)

var (
	flagSeed      = flag.Int64("e2e.seed", 20261126, "seed of the simulator's scenario and faults")
	flagLogDir    = flag.String("e2e.logdir", "", "directory for the processes' logs, kept after the test (default: a temporary directory)")
	flagWaitLease = flag.Bool("e2e.wait-lease", false, "after a crash, wait for the dead run's lease to expire on its own "+
		"(RUN_BUDGET + the collector's 2m lease margin) instead of deleting it from the bucket")
)

// The deployment under test.
const (
	org         = "e2e-org"
	bucketName  = "e2e-bucket"
	dataPrefix  = "sentry/events/"
	statePrefix = "sentry/state/"
	leaseObject = statePrefix + "events/lease.json"
	topicID     = "sentry-trigger"
	subID       = "sentry-trigger-push"

	tickEvery = 3 * time.Second  // Cloud Scheduler's tick, scaled down
	runBudget = 15 * time.Second // RUN_BUDGET
	maxPages  = 3                // MAX_PAGES_PER_PROJECT: backlogs need continuations
)

// Phase 1: a backlog to drain (the first run looks back INITIAL_LOOKBACK),
// then events arriving in real time, some of them visible late.
var phase1 = sentrysim.Scenario{
	Projects:     4,
	Backlog:      2500,
	BacklogSpan:  6 * time.Hour,
	Arrivals:     400,
	ArrivalSpan:  25 * time.Second,
	LateFraction: 0.1,
	MaxLate:      15 * time.Second,
}

// Phase 2: a new project with a large backlog, so that the server is killed
// while draining it, and more arrivals everywhere.
const crashBacklog = 3000

var phase2 = sentrysim.Scenario{
	Arrivals:     200,
	ArrivalSpan:  15 * time.Second,
	LateFraction: 0.1,
	MaxLate:      10 * time.Second,
}

// deployment is everything the test started.
type deployment struct {
	ps    *procs
	sim   *sentrysim.Running
	gcs   *fakeGCS
	proxy *gcsProxy // the server's view of the bucket
	emu   *emulator
	srv   *serverProc
}

// TestEndToEnd runs the built server behind the real Pub/Sub emulator, with a
// standalone fake-gcs-server as the bucket and the Sentry simulator as the
// API, and asserts that the bucket holds exactly the simulator's visible
// events, each once: after a backlog drained through continuations and live
// arrivals with late visibility and injected faults, and again after the
// server was SIGKILLed twice in the middle of a run (once between writing a
// data object and committing its checkpoint) and restarted.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: left out with -short")
	}
	requireTools(t)
	testStart := time.Now()
	// With -e2e.wait-lease, each crash costs the dead run's lease TTL.
	var leaseWait time.Duration
	if *flagWaitLease {
		leaseWait = runBudget + 2*time.Minute + 10*time.Second
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute+2*leaseWait)
	defer cancel()

	d := &deployment{ps: newProcs(t, *flagLogDir)}
	work := t.TempDir()
	serverBin, fakeGCSBin := buildBinaries(t, repoRoot(t), work)

	// The bucket (the server reaches it through a proxy that can hold a
	// write) and Pub/Sub.
	d.gcs = startFakeGCS(ctx, t, d.ps, fakeGCSBin, work, bucketName)
	d.proxy = startGCSProxy(t, d.gcs.host)
	d.emu = startEmulator(ctx, t, d.ps, work)

	// Sentry, with rate limits scaled down so that runs take seconds.
	var err error
	d.sim, err = sentrysim.Start(sentrysim.Config{
		Org:  org,
		Seed: *flagSeed,
		RateLimits: sentrysim.RateLimitConfig{
			Events:  sentrysim.Limit{Limit: 20, Window: 4 * time.Second, Concurrent: 1},
			Default: sentrysim.Limit{Limit: 40, Window: time.Second, Concurrent: 25},
		},
		Faults: sentrysim.Faults{P5xx: 0.03, P502HTML: 0.02, PTruncated: 0.02, PQueryTimeout: 0.01},
	})
	if err != nil {
		t.Fatalf("failed to start the simulator: %v", err)
	}
	t.Cleanup(func() { _ = d.sim.Close() })

	// The service.
	topic := "projects/" + gcpProject + "/topics/" + topicID
	d.srv = &serverProc{bin: serverBin, dir: work, port: collecttest.FreePort(t)}
	d.srv.env = append(baseEnv(work),
		"PORT="+strconv.Itoa(d.srv.port),
		"PUSH_AUTH_DISABLED=true", // the emulator sends no OIDC token
		"SENTRY_API_BASE="+d.sim.URL(),
		"SENTRY_ORG="+org,
		"SENTRY_AUTH_TOKEN=e2e-token",
		"GCS_BUCKET="+bucketName,
		"GCS_PREFIX="+dataPrefix,
		"STATE_KEY="+statePrefix,
		"STORAGE_EMULATOR_HOST="+d.proxy.host,
		"PUBSUB_EMULATOR_HOST="+d.emu.host,
		"PUBSUB_TOPIC="+topic,
		"COLLECT_LAG=3s",
		"COLLECT_OVERLAP=1m",
		"INITIAL_LOOKBACK=7h",
		"RUN_BUDGET="+runBudget.String(),
		"MAX_PAGES_PER_PROJECT="+strconv.Itoa(maxPages),
		"LOG_LEVEL=info",
		"GORACE=halt_on_error=0",
	)
	d.srv.start(ctx, t, d.ps)
	d.emu.createPush(ctx, t, topic, "projects/"+gcpProject+"/subscriptions/"+subID, d.srv.url()+"/pubsub/push")

	// Phase 1: backlog, live arrivals, late events, faults.
	d.sim.Populate(phase1)
	total := phase1.Backlog + phase1.Arrivals
	phaseStart := time.Now()
	tk := startTicker(ctx, t, d.emu, topic, tickEvery)
	t.Logf("phase 1: %d projects, %d backlog events, %d arrivals over %s; ticks every %s",
		phase1.Projects, phase1.Backlog, phase1.Arrivals, phase1.ArrivalSpan, tickEvery)

	waitAllVisible(ctx, t, d.sim, total, phase1.ArrivalSpan+phase1.MaxLate+30*time.Second)
	got := waitExactlyOnce(ctx, t, d.gcs, d.sim, 90*time.Second)
	t.Logf("phase 1: %d events in %d objects, exactly the ground truth, %s after the scenario started",
		got.Distinct(), got.Objects, time.Since(phaseStart).Round(time.Second))
	outcomes := pushOutcomes(t, d.srv.logs(t, d.ps))
	t.Logf("phase 1: push outcomes %v", outcomes)
	if outcomes["continued"] == 0 {
		t.Errorf("phase 1 published no continuation: MAX_PAGES_PER_PROJECT=%d should have left backlog at the end of runs", maxPages)
	}

	// Phase 2: a new project's backlog and more arrivals; the server is
	// killed twice while it drains them.
	p := d.sim.AddProject("crash-test", "Crash Test")
	now := time.Now()
	for i := range crashBacklog {
		d.sim.AddEvent(p.ID, sentrysim.EventSpec{
			Timestamp: now.Add(-time.Duration(i+1) * 6 * time.Second),
			Message:   fmt.Sprintf("CrashError: failure %d", i%7),
			Level:     "error",
		})
	}
	// Armed before the project can be seen: hold the project's checkpoint
	// commit that follows the write of one of its data objects.
	held, orphan := d.proxy.arm("/"+org+"-"+p.ID+"-", statePrefix+"events/projects/"+p.ID+".json")
	d.sim.Populate(phase2)
	total += crashBacklog + phase2.Arrivals
	phaseStart = time.Now()
	t.Logf("phase 2: project %s with %d backlog events, %d arrivals over %s",
		p.ID, crashBacklog, phase2.Arrivals, phase2.ArrivalSpan)

	// Crash 1: between a data object and its checkpoint commit.
	select {
	case <-held:
	case <-time.After(time.Minute):
		t.Fatalf("no checkpoint commit of project %s after one of its data objects within a minute", p.ID)
	}
	unanswered := d.kill(ctx, t, "while committing the checkpoint after writing a data object")
	if attrs, err := d.gcs.client.Bucket(bucketName).Object(orphan()).Attrs(ctx); err != nil {
		t.Fatalf("the data object written before the held checkpoint commit (%q) is not in the bucket: %v", orphan(), err)
	} else {
		t.Logf("crash: data object %s (%d bytes) is stored but its checkpoint commit never happened", attrs.Name, attrs.Size)
	}
	d.srv.start(ctx, t, d.ps)

	// Crash 2: at an arbitrary point of a run, a few requests into it.
	killAt := d.sim.RequestStats().ByGroup[sentrysim.GroupEvents] + 3
	for d.sim.RequestStats().ByGroup[sentrysim.GroupEvents] < killAt {
		if time.Since(phaseStart) > 2*time.Minute+leaseWait || ctx.Err() != nil {
			t.Fatalf("no run read events after the restart (project-events requests: %d, want %d)",
				d.sim.RequestStats().ByGroup[sentrysim.GroupEvents], killAt)
		}
		if d.srv.proc.exited() {
			t.Fatalf("server exited on its own: %v", d.srv.proc.waitErr)
		}
		time.Sleep(2 * time.Millisecond)
	}
	unanswered = append(unanswered, d.kill(ctx, t, "a few Sentry requests into a run")...)
	d.srv.start(ctx, t, d.ps)

	waitAllVisible(ctx, t, d.sim, total, phase2.ArrivalSpan+phase2.MaxLate+30*time.Second)
	got = waitExactlyOnce(ctx, t, d.gcs, d.sim, 90*time.Second+leaseWait)
	t.Logf("phase 2: %d events in %d objects, exactly the ground truth, %s after the crash phase started",
		got.Distinct(), got.Objects, time.Since(phaseStart).Round(time.Second))

	// Two more ticks re-read the overlap: still exactly once.
	time.Sleep(2*tickEvery + time.Second)
	checkExactlyOnce(ctx, t, d.gcs, d.sim)

	logs := d.srv.logs(t, d.ps)
	received := pushesReceived(t, logs)
	for _, id := range unanswered {
		if received[id] < 2 {
			t.Errorf("the push of message %s, interrupted by a kill, was not redelivered (received %d times)", id, received[id])
		}
	}
	statuses := pushStatuses(t, logs)
	t.Logf("both phases: push outcomes %v, HTTP statuses %v, objects recovered %d",
		pushOutcomes(t, logs), statuses, objectsRecovered(t, logs))
	for status, n := range statuses {
		if status/100 != 2 && status != http.StatusServiceUnavailable {
			t.Errorf("the server answered %d pushes with %d: only 2xx and 503 (transient) are expected here", n, status)
		}
	}
	if races := raceReports(logs); len(races) > 0 {
		t.Errorf("the server's race detector reported %d data races; the first:\n%s", len(races), races[0])
	}
	sent, failed, lastErr := tk.counts()
	if failed > 0 {
		t.Errorf("%d of %d ticks failed to publish; last: %v", failed, sent+failed, lastErr)
	}
	st := d.sim.RequestStats()
	t.Logf("simulator: %d requests (%d project-events), %d rate-limited, %d faults injected, by status %v",
		st.Total, st.ByGroup[sentrysim.GroupEvents], st.RateLimited, st.Faults, st.ByStatus)
	t.Logf("total %s, %d ticks published", time.Since(testStart).Round(time.Second), sent)
}

// kill SIGKILLs the server's process group in the middle of a run, and
// frees the lease of the run it interrupted unless -e2e.wait-lease. It
// returns the message ids of the pushes the dead process never answered.
func (d *deployment) kill(ctx context.Context, t *testing.T, when string) []string {
	t.Helper()
	d.srv.proc.kill(t)
	unanswered := pushesInProgress(t, d.srv.lastLog(t, d.ps))
	lease, held := leaseHolder(ctx, t, d.gcs.client)
	t.Logf("crash: server run %d SIGKILLed %s (unanswered pushes %v; lease: %s)", d.srv.runs, when, unanswered, lease)
	if !held {
		t.Errorf("crash %s: the lease was not held, so no run was in progress", when)
	}
	if held && !*flagWaitLease {
		// The TTL is RUN_BUDGET + the collector's fixed 2m margin: waiting
		// for it would double the test's time.
		deleteLease(ctx, t, d.gcs.client)
		t.Logf("crash: deleted the dead run's lease instead of waiting for its TTL (-e2e.wait-lease waits)")
	}
	return unanswered
}
