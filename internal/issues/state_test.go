package issues

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/collecttest"
	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/sentry"
	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
)

// TestMigrateVersion1: the first issues stream's state (version 1) is taken
// over: the watermark and the object sequence are kept, so an object its
// interrupted run left under the current name is recovered and not written
// twice; a window in progress restarts from its start (its cursor was for
// another order); its marks, fingerprints of another kind, are dropped.
func TestMigrateVersion1(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 4, sentrysim.Config{})
	p := w.Sim.AddProject("web", "Web")
	for _, m := range []string{"KeyError: a", "KeyError: b"} {
		w.Sim.AddEvent(p.ID, sentrysim.EventSpec{Timestamp: collecttest.T0.Add(-5 * time.Minute), Message: m})
	}
	w.Clock.Advance(time.Minute)
	// The object the version-1 run left: the first issue's row.
	page, err := w.Client("tok").ListIssues(t.Context(), sentry.IssuesQuery{Org: collecttest.Org, Start: collecttest.T0.Add(-time.Hour), End: collecttest.T0, Limit: 1})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("ListIssues: %v (%d rows)", err, len(page.Items))
	}
	wm := collecttest.T0.Add(-20 * time.Minute)
	name := engine.ObjectName(collecttest.IssuesPrefix, collecttest.Org, Name, wm.Unix(), 3)
	if err := w.Store.Create(t.Context(), name, append(page.Items[0].Raw, '\n'), "application/x-ndjson"); err != nil {
		t.Fatal(err)
	}
	v1 := fmt.Sprintf(`{"version":1,"watermark":%q,"window":{"start":%q,"end":%q,"cursor":"1773143700000:0:0","pages":2},`+
		`"next_seq":3,"next_epoch":%d,"issues":{"%s":{"v":"0123456789abcdef","ls":%d}}}`,
		wm.Format(time.RFC3339), wm.Add(-30*time.Minute).Format(time.RFC3339), wm.Format(time.RFC3339), wm.Unix(), page.Items[0].ID, wm.Unix())
	if _, err := w.Store.Write(t.Context(), collecttest.StatePrefix+"issues/state.json", []byte(v1), "application/json", 0); err != nil {
		t.Fatal(err)
	}
	s, err := w.runWith(options(), nil, "tok")
	if err != nil || s.ObjectsRecovered != 1 || s.Records != 1 {
		t.Fatalf("first run after the upgrade: recovered %d, records %d, err %v; want 1, 1, nil", s.ObjectsRecovered, s.Records, err)
	}
	if diff := cmp.Diff(w.simIDs(), w.bucketIDs()); diff != "" {
		t.Errorf("issues in the bucket, each once (-want +got):\n%s", diff)
	}
	st := w.readState()
	if st.Version != stateVersion || len(st.Marks) != 2 || st.NextSeq != 5 {
		t.Errorf("state: version %d, marks %d, next seq %d; want %d, 2, 5", st.Version, len(st.Marks), st.NextSeq, stateVersion)
	}
}

// TestMigrate covers the state document's versions.
func TestMigrate(t *testing.T) {
	t.Parallel()
	t0 := collecttest.T0
	cases := []struct {
		name    string
		in      state
		want    state
		wantErr bool
	}{
		{
			name: "version_1_window_restarts",
			in: state{Version: 1, Watermark: t0, Window: &pass{Start: t0, End: t0.Add(time.Hour), Cursor: "c", Pages: 4},
				Sequence: engine.Sequence{NextSeq: 7, NextEpoch: 99}},
			want: state{Version: stateVersion, Watermark: t0, Window: &pass{Start: t0, End: t0.Add(time.Hour)},
				Sequence: engine.Sequence{NextSeq: 7, NextEpoch: 99}, Marks: marks{}},
		},
		{
			name: "current_version_kept",
			in:   state{Version: stateVersion, Sweep: &pass{Start: t0, End: t0, Cursor: "c"}, Marks: marks{"1": {v: "x", hour: 3600}}},
			want: state{Version: stateVersion, Sweep: &pass{Start: t0, End: t0, Cursor: "c"}, Marks: marks{"1": {v: "x", hour: 3600}}},
		},
		{name: "unknown_version", in: state{Version: 3}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := tc.in
			err := st.migrate()
			if (err != nil) != tc.wantErr {
				t.Fatalf("migrate: %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tc.want, st, cmp.AllowUnexported(mark{})); diff != "" {
				t.Errorf("migrated (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMarksJSON: marks round-trip through their grouped form, which stays
// small, and pruning drops a mark only once its whole hour is before the
// limit.
func TestMarksJSON(t *testing.T) {
	t.Parallel()
	h := time.Date(2026, 3, 10, 11, 0, 0, 0, time.UTC).Unix()
	m := marks{
		"6000000001": {v: "0123456789abcdef", hour: h},
		"6000000002": {v: "fedcba9876543210", hour: h},
		"6000000003": {v: "00000000000000ff", hour: h + 3600},
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"1773140400":{"6000000001":"0123456789abcdef","6000000002":"fedcba9876543210"},"1773144000":{"6000000003":"00000000000000ff"}}`
	if string(b) != want {
		t.Errorf("JSON:\n got %s\nwant %s", b, want)
	}
	var back marks
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, back, cmp.AllowUnexported(mark{})); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	back.prune(h + 3600 - 1) // inside the first hour: keep it
	if len(back) != 3 {
		t.Errorf("pruned inside the hour: %d marks left, want 3", len(back))
	}
	back.prune(h + 3600) // the first hour is entirely before
	if _, ok := back["6000000003"]; len(back) != 1 || !ok {
		t.Errorf("pruned at the hour's end: %v, want only 6000000003", back)
	}
	if got := hourOf(h + 3599); got != h {
		t.Errorf("hourOf: got %d, want %d", got, h)
	}
}
