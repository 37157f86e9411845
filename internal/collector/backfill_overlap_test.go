package collector

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// Regression tests for the review's H3: overlapping backfill jobs.

func TestCreateBackfillIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1", "2")
	e.api.add("1", 5, t0.Add(-40*time.Hour))
	e.run()
	c := e.collector(nil, nil)
	spec := BackfillSpec{Start: t0.Add(-48 * time.Hour), End: t0.Add(-30 * time.Hour), Projects: []string{"2", "p1"}}
	a, err := c.CreateBackfill(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	// The same request again (a lost response, a retry), spelled
	// differently: the same pending job.
	same := BackfillSpec{Start: spec.Start.Add(time.Millisecond), End: spec.End, Projects: []string{"1", "2"}, Streams: []string{"events"}}
	b, err := e.collector(nil, nil).CreateBackfill(t.Context(), same)
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != a.ID {
		t.Fatalf("second request made job %s, want the existing %s", b.ID, a.ID)
	}
	other, err := c.CreateBackfill(t.Context(), BackfillSpec{Start: spec.Start, End: spec.End, Projects: []string{"1"}})
	if err != nil || other.ID == a.ID {
		t.Fatalf("a different request: job %s, %v; want a new job", other.ID, err)
	}
	// Once the job is finished, the same request makes a new job.
	if s, err := c.RunBackfill(t.Context(), a.ID); err != nil || s.Status != BackfillDone {
		t.Fatalf("RunBackfill: %+v, %v", s.Status, err)
	}
	again, err := c.CreateBackfill(t.Context(), spec)
	if err != nil || again.ID == a.ID || again.Status != BackfillPending {
		t.Fatalf("after the job finished: job %s (%s), %v; want a new pending job", again.ID, again.Status, err)
	}
}

// holdStore holds the first data object write of one job until released.
type holdStore struct {
	*memStore
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
	return h.memStore.Create(ctx, name, data, ct)
}

// Two overlapping jobs (all projects, and one of them) run at the same time:
// the second finds the project's backfill lease held and leaves it for a
// later run, instead of de-duplicating against a bucket the first has not
// written yet.
func TestOverlappingBackfillJobsDoNotWriteTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	e.api.add("1", 50, t0.Add(-40*time.Hour)) // before the stream's first window
	e.run()
	c := e.collector(nil, nil)
	a, err := c.CreateBackfill(t.Context(), BackfillSpec{Start: t0.Add(-48 * time.Hour), End: t0.Add(-30 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateBackfill(t.Context(), BackfillSpec{Start: t0.Add(-47 * time.Hour), End: t0.Add(-30 * time.Hour), Projects: []string{"1"}})
	if err != nil {
		t.Fatal(err)
	}
	hs := &holdStore{memStore: e.store, job: a.ID, held: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := e.collector(hs, e.store).RunBackfill(context.Background(), a.ID)
		done <- err
	}()
	<-hs.held // job a has scanned the bucket and read Sentry; it is about to write
	sb, err := e.collector(hs, e.store).RunBackfill(t.Context(), b.ID)
	close(hs.release)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if sb.EventsWritten != 0 || !sb.WorkRemaining {
		t.Errorf("second job while the first held the project: wrote %d, work remaining %v; want 0, true", sb.EventsWritten, sb.WorkRemaining)
	}
	sb, err = e.collector(nil, nil).RunBackfill(t.Context(), b.ID)
	if err != nil || sb.Status != BackfillDone || sb.EventsWritten != 0 {
		t.Errorf("second job afterwards: %s, wrote %d, %v; want done, 0", sb.Status, sb.EventsWritten, err)
	}
	e.check()
}
