package state

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

type checkpoint struct {
	Watermarks map[string]string `json:"watermarks"`
	Count      int               `json:"count"`
}

func TestDoc(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name string
		run  func(t *testing.T, objs Objects)
	}{
		{name: "missing_is_zero_value", run: func(t *testing.T, objs Objects) {
			v, gen, err := NewDoc[checkpoint](objs).Load(t.Context(), "s/cp.json")
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if gen != 0 {
				t.Errorf("generation = %d, want 0", gen)
			}
			if diff := cmp.Diff(checkpoint{}, v); diff != "" {
				t.Errorf("value (-want +got):\n%s", diff)
			}
		}},
		{name: "save_load_and_conflict", run: func(t *testing.T, objs Objects) {
			ctx := t.Context()
			d := NewDoc[checkpoint](objs)
			want := checkpoint{Watermarks: map[string]string{"42": "2026-01-02T03:04:05Z"}, Count: 1}
			g1, err := d.Save(ctx, "s/cp.json", want, 0)
			if err != nil {
				t.Fatalf("Save(0): %v", err)
			}
			got, gen, err := d.Load(ctx, "s/cp.json")
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if gen != g1 {
				t.Errorf("Load generation = %d, want %d", gen, g1)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Load (-want +got):\n%s", diff)
			}
			if _, err := d.Save(ctx, "s/cp.json", checkpoint{Count: 9}, 0); !errors.Is(err, ErrConflict) {
				t.Errorf("Save(0) over existing = %v, want ErrConflict", err)
			}
			g2, err := d.Save(ctx, "s/cp.json", checkpoint{Count: 2}, g1)
			if err != nil {
				t.Fatalf("Save(g1): %v", err)
			}
			_, err = d.Save(ctx, "s/cp.json", checkpoint{Count: 9}, g1)
			if !errors.Is(err, ErrConflict) || !errors.Is(err, sink.ErrPrecondition) {
				t.Errorf("Save(stale) = %v, want ErrConflict wrapping sink.ErrPrecondition", err)
			}
			got, gen, _ = d.Load(ctx, "s/cp.json")
			if got.Count != 2 || gen != g2 {
				t.Errorf("after stale save: count %d gen %d, want 2 gen %d", got.Count, gen, g2)
			}
			if err := d.Delete(ctx, "s/cp.json", g1); !errors.Is(err, ErrConflict) {
				t.Errorf("Delete(stale) = %v, want ErrConflict", err)
			}
			if err := d.Delete(ctx, "s/cp.json", g2); err != nil {
				t.Errorf("Delete(g2) = %v", err)
			}
			if err := d.Delete(ctx, "s/cp.json", g2); err != nil {
				t.Errorf("Delete of a missing document = %v, want nil", err)
			}
			if _, gen, err := d.Load(ctx, "s/cp.json"); err != nil || gen != 0 {
				t.Errorf("Load after Delete = gen %d, %v; want 0, nil", gen, err)
			}
		}},
		{name: "corrupt_document_is_an_error", run: func(t *testing.T, objs Objects) {
			if _, err := objs.Write(t.Context(), "s/bad", []byte("{not json"), ContentType, 0); err != nil {
				t.Fatalf("Write: %v", err)
			}
			_, _, err := NewDoc[checkpoint](objs).Load(t.Context(), "s/bad")
			if err == nil || !strings.Contains(err.Error(), "failed to decode state s/bad") {
				t.Errorf("Load = %v, want a decode error naming the key", err)
			}
		}},
		{name: "concurrent_updates_none_lost", run: func(t *testing.T, objs Objects) {
			ctx := t.Context()
			d := NewDoc[checkpoint](objs)
			const workers, each = 4, 5
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for range each {
						for {
							_, _, err := d.Update(ctx, "s/counter", func(v *checkpoint) error {
								v.Count++
								return nil
							})
							if err == nil {
								break
							}
							if !errors.Is(err, ErrConflict) {
								t.Errorf("Update: %v", err)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			got, _, err := d.Load(ctx, "s/counter")
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got.Count != workers*each {
				t.Errorf("count = %d, want %d", got.Count, workers*each)
			}
		}},
		{name: "update_fn_error_aborts", run: func(t *testing.T, objs Objects) {
			boom := errors.New("boom")
			_, _, err := NewDoc[checkpoint](objs).Update(t.Context(), "s/x", func(*checkpoint) error { return boom })
			if !errors.Is(err, boom) {
				t.Errorf("Update = %v, want boom", err)
			}
			if _, _, err := objs.Read(t.Context(), "s/x"); !errors.Is(err, sink.ErrNotFound) {
				t.Errorf("document written despite error: %v", err)
			}
		}},
	}
	for _, b := range backends() {
		for _, tc := range cases {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				tc.run(t, b.new(t))
			})
		}
	}
}
