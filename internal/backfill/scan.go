package backfill

import (
	"context"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/engine"
	"github.com/secops-collectors/sentry-gcs/internal/events"
)

// De-duplication against the bucket: before a project's slice [a, b) is
// read from Sentry (in every run that works on it), the ids the bucket holds
// with dateCreated in [a, b) are read back (events.Scanner, which explains
// which objects that takes and what it costs) and skipped.

// scan returns the ids already stored for project p with dateCreated in
// [a, b), and the stream predecessor for the next slice (b).
func (x *run) scan(ctx context.Context, p *Project, a, b time.Time) (engine.Seen, string, error) {
	if x.scanner == nil {
		x.scanner = x.j.stream.NewScanner(x.j.bucket, x.r)
	}
	pred := events.Pred{Name: p.StreamPred, Resolved: p.PredResolved}
	seen, err := x.scanner.Scan(ctx, p.ID, a, b, &pred)
	if err != nil {
		return nil, "", err
	}
	return seen, pred.Name, nil
}
