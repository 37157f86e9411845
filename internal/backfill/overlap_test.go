package backfill

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"

	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// Overlapping and repeated backfill requests.

func TestCreateBackfillIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1", "2")
	e.api.Add("1", 5, collecttest.T0.Add(-40*time.Hour))
	e.runStream()
	c := e.jobs(nil)
	spec := Spec{Start: collecttest.T0.Add(-48 * time.Hour), End: collecttest.T0.Add(-30 * time.Hour), Projects: []string{"2", "p1"}}
	a, err := c.Create(e.ctx(), spec)
	if err != nil {
		t.Fatal(err)
	}
	// The same request again (a lost response, a retry), spelled
	// differently: the same pending job.
	same := Spec{Start: spec.Start.Add(time.Millisecond), End: spec.End, Projects: []string{"1", "2"}, Streams: []string{"events"}}
	b, err := e.jobs(nil).Create(e.ctx(), same)
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != a.ID {
		t.Fatalf("second request made job %s, want the existing %s", b.ID, a.ID)
	}
	other, err := c.Create(e.ctx(), Spec{Start: spec.Start, End: spec.End, Projects: []string{"1"}})
	if err != nil || other.ID == a.ID {
		t.Fatalf("a different request: job %s, %v; want a new job", other.ID, err)
	}
	// Once the job is finished, the same request makes a new job.
	if s, err := e.runJob(c, a.ID); err != nil || s.Job.Status != Done {
		t.Fatalf("RunBackfill: %+v, %v", s.Job.Status, err)
	}
	again, err := c.Create(e.ctx(), spec)
	if err != nil || again.ID == a.ID || again.Status != Pending {
		t.Fatalf("after the job finished: job %s (%s), %v; want a new pending job", again.ID, again.Status, err)
	}
}

// holdStore holds the first data object write of one job until released.
type holdStore struct {
	*sink.Memory
	job     string
	once    sync.Once
	held    chan struct{}
	release chan struct{}
}

func (h *holdStore) Create(ctx context.Context, name string, data []byte, ct string) error {
	if strings.Contains(name, "-bf"+h.job+"-") {
		h.once.Do(func() {
			close(h.held)
			<-h.release
		})
	}
	return h.Memory.Create(ctx, name, data, ct)
}

// Two overlapping jobs (all projects, and one of them) run at the same time:
// the second finds the project's backfill lease held and leaves it for a
// later run, instead of de-duplicating against a bucket the first has not
// written yet.
func TestOverlappingBackfillJobsDoNotWriteTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.api.Add("1", 50, collecttest.T0.Add(-40*time.Hour)) // before the stream's first window
	e.runStream()
	c := e.jobs(nil)
	a, err := c.Create(e.ctx(), Spec{Start: collecttest.T0.Add(-48 * time.Hour), End: collecttest.T0.Add(-30 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Create(e.ctx(), Spec{Start: collecttest.T0.Add(-47 * time.Hour), End: collecttest.T0.Add(-30 * time.Hour), Projects: []string{"1"}})
	if err != nil {
		t.Fatal(err)
	}
	hs := &holdStore{Memory: e.store, job: a.ID, held: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := e.jobs(hs).Run(e.ctx(), a.ID, 7*time.Minute)
		done <- err
	}()
	<-hs.held // job a has scanned the bucket and read Sentry; it is about to write
	sb, err := e.jobs(hs).Run(e.ctx(), b.ID, 7*time.Minute)
	close(hs.release)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if sb.Summary.Records != 0 || !sb.Summary.WorkRemaining {
		t.Errorf("second job while the first held the project: wrote %d, work remaining %v; want 0, true", sb.Summary.Records, sb.Summary.WorkRemaining)
	}
	sb, err = e.runJob(e.jobs(nil), b.ID)
	if err != nil || sb.Job.Status != Done || sb.Summary.Records != 0 {
		t.Errorf("second job afterwards: %s, wrote %d, %v; want done, 0", sb.Job.Status, sb.Summary.Records, err)
	}
	e.check()
}
