package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/backfill"
	"github.com/secops-collectors/sentry-gcs/internal/pubsub"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// TestBackfill_endToEnd drives the real collector (simulated Sentry, local
// directory) through the router: a tick collects the recent events, POST
// /backfill records a job over an older range plus the collected one, the
// published backfill messages are pushed back until the job is done, and
// every event is stored exactly once; GET shows the progress.
func TestBackfill_endToEnd(t *testing.T) {
	t.Parallel()
	sim, err := sentrysim.Start(sentrysim.Config{Org: "acme", Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	p := sim.AddProject("web", "Web")
	now := time.Now().UTC()
	want := map[string]bool{}
	for i := range 12 {
		want[sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: now.Add(-30*time.Hour - time.Duration(i)*time.Hour), Message: "old"})] = true
	}
	for i := range 3 {
		want[sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: now.Add(-time.Duration(40+i) * time.Minute), Message: "recent"})] = true
	}
	store, err := sink.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := newTestApp(t, sim.URL(), store, nil)
	env := newTestEnv(t, func(o *serverOptions) {
		o.Collector, o.Backfill = a, a
		o.Verifier, o.AuthDisabled = nil, true
	})

	if rec := env.push(t, wrapped("tick", "{}", 0)); rec.Code != http.StatusOK {
		t.Fatalf("tick: %d %s", rec.Code, rec.Body.String())
	}
	body := `{"projects":["web"],"start":"` + now.Add(-50*time.Hour).Format(time.RFC3339) + `","end":"` + now.Format(time.RFC3339) + `"}`
	rec := env.do(t, http.MethodPost, pathBackfill, body, http.Header{"Content-Type": {"application/json"}})
	if rec.Code != http.StatusAccepted {
		t.Fatalf("POST /backfill: %d %s", rec.Code, rec.Body.String())
	}
	id, _ := decodeBody(t, rec)["job_id"].(string)
	for i := 0; ; i++ {
		sent := env.publisher.Sent()
		if i >= len(sent) {
			break
		}
		if i > 50 {
			t.Fatal("too many backfill pushes")
		}
		w := sent[i]
		if w.Kind != pubsub.KindBackfill || w.JobID != id {
			continue
		}
		data, err := w.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if rec := env.push(t, wrapped("bf", string(data), 0)); rec.Code != http.StatusOK {
			t.Fatalf("backfill push: %d %s", rec.Code, rec.Body.String())
		}
	}
	rec = env.do(t, http.MethodGet, pathBackfill+"/"+id, "", nil)
	var prog backfillProgress
	if err := json.Unmarshal(rec.Body.Bytes(), &prog); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("GET: %d %s", rec.Code, rec.Body.String())
	}
	if prog.Status != backfill.Done || prog.EventsWritten != 12 || prog.WindowsDone != prog.WindowsTotal {
		t.Errorf("progress = %+v, want done with the 12 old events", prog)
	}

	names, err := store.List(t.Context(), "sentry/events/")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, n := range names {
		data, _, err := store.Read(t.Context(), n)
		if err != nil {
			t.Fatal(err)
		}
		for line := range bytes.Lines(data) {
			var ev struct{ ID string }
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			got[ev.ID]++
		}
	}
	for id := range want {
		if got[id] != 1 {
			t.Errorf("event %s stored %d times", id, got[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("stored %d distinct events, want %d", len(got), len(want))
	}
	if !strings.Contains(strings.Join(names, " "), "-bf"+id+"-") {
		t.Errorf("no backfill object among %v", names)
	}
}
