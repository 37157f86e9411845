package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
	"github.com/secops-collectors/sentry-gcs/internal/sink"
)

// contentTypeNDJSON is the content type of data objects.
const contentTypeNDJSON = "application/x-ndjson"

// readBucket compares what the bucket holds under prefix with truth through
// the one ground-truth checker (sentrysim.Verify: each line a compact event
// row, nothing lost, duplicated or unknown), after checking what only the
// bucket knows: every data object's content type.
func readBucket(ctx context.Context, client *storage.Client, bucket, prefix string, truth map[string]map[string]bool) (*sentrysim.Report, error) {
	var badTypes []string
	it := client.Bucket(bucket).Objects(ctx, &storage.Query{Prefix: prefix})
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("failed to list gs://%s/%s: %w", bucket, prefix, err)
		}
		if attrs.ContentType != contentTypeNDJSON {
			badTypes = append(badTypes, fmt.Sprintf("%s: content type %q, want %q", attrs.Name, attrs.ContentType, contentTypeNDJSON))
		}
	}
	rep, err := sentrysim.Verify(ctx, sink.NewGCS(client, bucket), prefix, truth)
	if err != nil {
		return nil, err
	}
	rep.Problems = append(rep.Problems, badTypes...)
	return rep, nil
}

// sample shortens a list for a failure message.
func sample(s []string) string {
	if len(s) > 5 {
		return strings.Join(s[:5], "\n") + "\n…"
	}
	return strings.Join(s, "\n")
}
