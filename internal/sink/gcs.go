package sink

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
)

// writeIDKey is the custom metadata key holding a random id per Write call.
// When a retried Write gets 412 because its own first attempt landed, the id
// on the stored object tells us the write was ours.
const writeIDKey = "sentry-gcs-write-id"

// uploadBlock is the granularity the client rounds ChunkSize to.
const uploadBlock = 256 << 10

// GCS stores objects in one Cloud Storage bucket.
//
// Uploads are sent in a single request (a multipart upload) whose body is
// buffered by the client, so a transient failure (408, 429, 5xx, network) is
// retried; every upload carries a generation precondition, which makes the
// retry idempotent (storage.RetryIdempotent). How long and how often the
// client waits between retries is the client's retry configuration
// (storage.Client.SetRetry). The client retries uploads until their context
// ends whatever its maximum number of attempts, so every Create, Read, Write
// and Delete runs under its own deadline (DefaultTimeout, see WithTimeout)
// within ctx: during an outage a call fails after that long instead of
// consuming the caller's whole budget. Errors that are still transient when
// retries stop (including that deadline) are marked transient
// (failure.Transient).
type GCS struct {
	client  *storage.Client
	bucket  string
	timeout time.Duration
}

// DefaultTimeout bounds one GCS operation, retries included.
const DefaultTimeout = time.Minute

// NewGCS returns a GCS sink over bucket. The client is owned by the caller.
func NewGCS(client *storage.Client, bucket string) *GCS {
	return &GCS{client: client, bucket: bucket, timeout: DefaultTimeout}
}

// WithTimeout returns a copy of g whose operations (Create, Read, Write and
// Delete, each with its retries) are bounded by d; d <= 0 leaves them
// bounded by the caller's context only.
func (g *GCS) WithTimeout(d time.Duration) *GCS {
	g2 := *g
	g2.timeout = d
	return &g2
}

// opContext bounds one operation by g.timeout.
func (g *GCS) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, g.timeout)
}

func (g *GCS) object(name string) *storage.ObjectHandle {
	return g.client.Bucket(g.bucket).Object(name)
}

func (g *GCS) uri(name string) string { return "gs://" + g.bucket + "/" + name }

// Create stores data under name if no object exists there (does-not-exist
// precondition). If one exists with byte-identical content, Create returns
// nil: that is a retry of a write that already landed (ours, or an earlier
// attempt of the same page). If one exists with other content, Create returns
// an error wrapping ErrExists and leaves the object untouched. If the object
// existed at the precondition check but is gone when read back (for instance a
// feed that deletes after transfer), its content cannot be compared and
// Create returns ErrExists as well, never rewriting it.
func (g *GCS) Create(ctx context.Context, name string, data []byte, contentType string) error {
	obj := g.object(name).If(storage.Conditions{DoesNotExist: true})
	_, err := g.upload(ctx, obj, data, contentType, nil)
	if err == nil {
		return nil
	}
	if !isPrecondition(err) {
		return fmt.Errorf("failed to create %s: %w", g.uri(name), classify(err))
	}
	existing, _, rerr := g.Read(ctx, name)
	switch {
	case errors.Is(rerr, ErrNotFound):
		return fmt.Errorf("failed to create %s: existed, then vanished before comparison: %w", g.uri(name), ErrExists)
	case rerr != nil:
		return fmt.Errorf("failed to compare existing %s: %w", g.uri(name), rerr)
	case bytes.Equal(existing, data):
		return nil
	default:
		return fmt.Errorf("failed to create %s: %w", g.uri(name), ErrExists)
	}
}

// Read returns the object's content and its generation, both from the same
// response.
func (g *GCS) Read(ctx context.Context, name string) ([]byte, int64, error) {
	ctx, cancel := g.opContext(ctx)
	defer cancel()
	r, err := g.object(name).NewReader(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, 0, fmt.Errorf("failed to read %s: %w", g.uri(name), ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("failed to read %s: %w", g.uri(name), classify(err))
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, 0, fmt.Errorf("failed to read %s: %w", g.uri(name), classify(err))
	}
	return data, r.Attrs.Generation, nil
}

// Write replaces the object if its generation is ifGeneration (0: it must
// not exist) and returns the new generation; otherwise it returns an error
// wrapping ErrPrecondition.
//
// Each call tags the object with a random write id. If a retried attempt is
// refused because the first attempt actually landed, the id on the stored
// object identifies it as ours and Write returns its generation instead of a
// false conflict. Content equality is deliberately not used here: another
// writer may have stored the same bytes from the same base, and treating that
// as ours would hide a lost update.
func (g *GCS) Write(ctx context.Context, name string, data []byte, contentType string, ifGeneration int64) (int64, error) {
	conds := storage.Conditions{DoesNotExist: true}
	if ifGeneration != 0 {
		conds = storage.Conditions{GenerationMatch: ifGeneration}
	}
	id := rand.Text()
	attrs, err := g.upload(ctx, g.object(name).If(conds), data, contentType, map[string]string{writeIDKey: id})
	if err == nil {
		return attrs.Generation, nil
	}
	if !isPrecondition(err) {
		return 0, fmt.Errorf("failed to write %s: %w", g.uri(name), classify(err))
	}
	actx, cancel := g.opContext(ctx)
	defer cancel()
	cur, aerr := g.object(name).Attrs(actx)
	if aerr == nil && cur.Metadata[writeIDKey] == id {
		return cur.Generation, nil
	}
	return 0, fmt.Errorf("failed to write %s at generation %d: %w", g.uri(name), ifGeneration, ErrPrecondition)
}

// upload writes data in one retryable request.
func (g *GCS) upload(ctx context.Context, obj *storage.ObjectHandle, data []byte, contentType string, metadata map[string]string) (*storage.ObjectAttrs, error) {
	ctx, cancel := g.opContext(ctx)
	defer cancel() // a cancelled context aborts an unfinished upload
	w := obj.Retryer(storage.WithPolicy(storage.RetryIdempotent)).NewWriter(ctx)
	// ChunkSize 0 would send one unbuffered request that the client cannot
	// retry; a chunk larger than the object gives one buffered, retryable
	// multipart request.
	w.ChunkSize = (len(data)/uploadBlock + 1) * uploadBlock
	w.ContentType = contentType
	w.Metadata = metadata
	if _, err := w.Write(data); err != nil {
		_ = w.Close()
		return nil, err //nolint:wrapcheck // wrapped by the caller
	}
	if err := w.Close(); err != nil {
		return nil, err //nolint:wrapcheck // wrapped by the caller
	}
	return w.Attrs(), nil
}

// List returns the names of the objects whose names start with prefix,
// sorted.
func (g *GCS) List(ctx context.Context, prefix string) ([]string, error) {
	q := &storage.Query{Prefix: prefix}
	if err := q.SetAttrSelection([]string{"Name"}); err != nil {
		return nil, fmt.Errorf("failed to list gs://%s/%s: %w", g.bucket, prefix, err)
	}
	it := g.client.Bucket(g.bucket).Objects(ctx, q)
	var names []string
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("failed to list gs://%s/%s: %w", g.bucket, prefix, classify(err))
		}
		names = append(names, attrs.Name)
	}
	slices.Sort(names)
	return names, nil
}

// Delete removes the object if its generation is ifGeneration (0: whatever
// its generation). A missing object is ErrNotFound, a generation mismatch
// ErrPrecondition.
//
// A conditional delete names the generation itself as well as the
// ifGenerationMatch precondition: deleting a specific generation can only
// remove that generation, whichever of the two a server enforces
// (fake-gcs-server ignores ifGenerationMatch on delete). A refusal (404 or
// 412) is then told apart by looking at the live object. A conditional delete
// is retried on transient errors, so a retry whose first attempt landed
// reports ErrNotFound: callers deleting their own object treat ErrNotFound as
// done.
func (g *GCS) Delete(ctx context.Context, name string, ifGeneration int64) error {
	ctx, cancel := g.opContext(ctx)
	defer cancel()
	obj := g.object(name)
	if ifGeneration != 0 {
		obj = obj.Generation(ifGeneration).If(storage.Conditions{GenerationMatch: ifGeneration})
	}
	err := obj.Delete(ctx)
	switch {
	case err == nil:
		return nil
	case ifGeneration != 0 && (errors.Is(err, storage.ErrObjectNotExist) || isPrecondition(err)):
		_, aerr := g.object(name).Attrs(ctx)
		if errors.Is(aerr, storage.ErrObjectNotExist) {
			return fmt.Errorf("failed to delete %s: %w", g.uri(name), ErrNotFound)
		}
		return fmt.Errorf("failed to delete %s at generation %d: %w", g.uri(name), ifGeneration, ErrPrecondition)
	case errors.Is(err, storage.ErrObjectNotExist):
		return fmt.Errorf("failed to delete %s: %w", g.uri(name), ErrNotFound)
	default:
		return fmt.Errorf("failed to delete %s: %w", g.uri(name), classify(err))
	}
}

// isPrecondition reports a failed precondition: HTTP 412, or the gRPC
// transport's FailedPrecondition / AlreadyExists.
func isPrecondition(err error) bool {
	var gerr *googleapi.Error
	if errors.As(err, &gerr) {
		return gerr.Code == http.StatusPreconditionFailed
	}
	if s, ok := status.FromError(err); ok {
		return s.Code() == codes.FailedPrecondition || s.Code() == codes.AlreadyExists
	}
	return false
}

// classify marks errors the storage client itself would retry (408, 429,
// 5xx, connection resets, unexpected EOF, gRPC Unavailable and the like) as
// transient.
func classify(err error) error {
	if storage.ShouldRetry(err) {
		return failure.Transient(err)
	}
	return err
}
