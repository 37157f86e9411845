package sink

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"

	"github.com/secops-collectors/sentry-gcs/internal/failure"
)

// fastRetry keeps the client's retries but makes their backoff tiny.
func fastRetry(c *storage.Client, attempts int) {
	c.SetRetry(storage.WithMaxAttempts(attempts),
		storage.WithBackoff(gax.Backoff{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond, Multiplier: 1.5}))
}

func TestGCSErrorsTransientOrNot(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name          string
		status        int
		wantTransient bool
	}{
		{name: "service_unavailable", status: http.StatusServiceUnavailable, wantTransient: true},
		{name: "too_many_requests", status: http.StatusTooManyRequests, wantTransient: true},
		{name: "forbidden", status: http.StatusForbidden, wantTransient: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			var requests atomic.Int64
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, `{"error":{"code":`+strconv.Itoa(tc.status)+`,"message":"injected"}}`)
			}))
			t.Cleanup(ts.Close)
			c, err := storage.NewClient(t.Context(), option.WithEndpoint(ts.URL+"/storage/v1/"), option.WithoutAuthentication())
			if err != nil {
				t.Fatalf("storage.NewClient: %v", err)
			}
			t.Cleanup(func() { _ = c.Close() })
			fastRetry(c, 3)
			// Uploads are retried until the operation's deadline whatever the
			// attempt limit: keep it short.
			g := NewGCS(c, testBucket).WithTimeout(100 * time.Millisecond)
			ctx := t.Context()

			ops := map[string]func() error{
				"create": func() error { return g.Create(ctx, "a.ndjson", []byte("x\n"), ContentTypeNDJSON) },
				"write": func() error {
					_, err := g.Write(ctx, "s.json", []byte("{}"), "application/json", 7)
					return err
				},
				"read": func() error {
					_, _, err := g.Read(ctx, "s.json")
					return err
				},
			}
			for op, f := range ops {
				before := requests.Load()
				err := f()
				if err == nil {
					t.Fatalf("%s: no error from a %d server", op, tc.status)
				}
				if got := failure.IsTransient(err); got != tc.wantTransient {
					t.Errorf("%s: failure.IsTransient(%v) = %v, want %v", op, err, got, tc.wantTransient)
				}
				if errors.Is(err, ErrExists) || errors.Is(err, ErrPrecondition) || errors.Is(err, ErrNotFound) {
					t.Errorf("%s: %v classified as a storage outcome", op, err)
				}
				// Transient failures are retried, permanent ones are not.
				if got := requests.Load() - before; (got > 1) != tc.wantTransient {
					t.Errorf("%s: %d requests, want retries only for transient errors", op, got)
				}
			}
		})
	}
}

// lossyTransport forwards the first uploads to the fake server and then
// answers 503 as if the response had been lost on the way back.
type lossyTransport struct {
	inner   http.RoundTripper
	drop    atomic.Int64 // number of upload responses still to lose
	uploads atomic.Int64
}

func (l *lossyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.inner.RoundTrip(r)
	if err != nil || !strings.Contains(r.URL.Path, "/upload/") {
		return resp, err
	}
	l.uploads.Add(1)
	if l.drop.Add(-1) < 0 {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return &http.Response{
		StatusCode: http.StatusServiceUnavailable,
		Status:     "503 Service Unavailable",
		Header:     http.Header{"Content-Type": []string{"application/json"}},
		Body:       io.NopCloser(strings.NewReader(`{"error":{"code":503,"message":"lost"}}`)),
		Request:    r,
	}, nil
}

func TestGCSRetryOfLandedWriteIsRecognised(t *testing.T) {
	t.Parallel()

	srv, _ := newFakeGCS(t)
	lossy := &lossyTransport{inner: srv.HTTPClient().Transport}
	c, err := storage.NewClient(t.Context(), option.WithHTTPClient(&http.Client{Transport: lossy}))
	if err != nil {
		t.Fatalf("storage.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	fastRetry(c, 5)
	g := NewGCS(c, testBucket)
	ctx := t.Context()

	// Create: the first attempt lands, its answer is lost, the retry gets
	// 412, and the identical content is recognised.
	lossy.drop.Store(1)
	data := []byte("{\"id\":\"a\"}\n")
	if err := g.Create(ctx, "p/1.ndjson", data, ContentTypeNDJSON); err != nil {
		t.Fatalf("Create with lost response: %v", err)
	}
	if got, want := lossy.uploads.Load(), int64(2); got != want {
		t.Errorf("uploads = %d, want %d (the retry must have happened)", got, want)
	}
	got, _, err := g.Read(ctx, "p/1.ndjson")
	if err != nil || string(got) != string(data) {
		t.Fatalf("Read = %q, %v; want %q", got, err, data)
	}

	// Write: the retry's 412 is recognised as our own write by its id.
	lossy.drop.Store(1)
	gen, err := g.Write(ctx, "s/doc", []byte("v1"), "application/json", 0)
	if err != nil {
		t.Fatalf("Write with lost response: %v", err)
	}
	_, readGen, err := g.Read(ctx, "s/doc")
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if gen != readGen {
		t.Errorf("Write returned generation %d, stored generation is %d", gen, readGen)
	}
	lossy.drop.Store(1)
	gen2, err := g.Write(ctx, "s/doc", []byte("v2"), "application/json", gen)
	if err != nil {
		t.Fatalf("CAS Write with lost response: %v", err)
	}
	if gen2 == gen {
		t.Errorf("generation unchanged after write")
	}

	// A different writer's object is not mistaken for ours.
	if _, err := g.Write(ctx, "s/doc", []byte("v3"), "application/json", gen); !errors.Is(err, ErrPrecondition) {
		t.Errorf("stale Write = %v, want ErrPrecondition", err)
	}
}
