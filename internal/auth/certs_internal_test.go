package auth

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"

	"github.com/secops-collectors/sentry-gcs/internal/auth/authtest"
)

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestSharedFetch_concurrentVerificationsFetchOnce starts many verifications
// while the certificates are not cached and the fetch is slow: they must
// share one fetch (idtoken alone would send one per verification), and a
// caller that gives up must not fail the others.
func TestSharedFetch_concurrentVerificationsFetchOnce(t *testing.T) {
	t.Parallel()

	const callers = 20
	signer := authtest.NewSigner(t)
	gate := make(chan struct{})
	var fetches atomic.Int32
	base := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		fetches.Add(1)
		select {
		case <-gate:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
		return signer.Transport().RoundTrip(r)
	})
	joined := make(chan struct{}, callers)
	sf := &sharedFetch{base: base, timeout: 5 * time.Second, joined: func() { joined <- struct{}{} }}
	v, err := idtoken.NewValidator(t.Context(), option.WithHTTPClient(&http.Client{Transport: sf, Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := NewVerifier(v, "aud", []string{"push@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	token := "Bearer " + signer.Token(t, authtest.PushClaims("aud", "push@example.com"))

	// Caller 0 gives up while the fetch is in flight; whether it started
	// the fetch or shares it, the others must not see its cancellation.
	ctx0, cancel0 := context.WithCancel(t.Context())
	defer cancel0()
	done0 := make(chan error, 1)
	go func() {
		_, err := verifier.Verify(ctx0, token)
		done0 <- err
	}()
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := 1; i < callers; i++ {
		wg.Go(func() { _, errs[i] = verifier.Verify(t.Context(), token) })
	}
	for range callers {
		<-joined
	}
	cancel0()
	errs[0] = <-done0
	close(gate)
	wg.Wait()

	if got, want := fetches.Load(), int32(1); got != want {
		t.Errorf("certificate fetches got %d, want %d", got, want)
	}
	if !errors.Is(errs[0], ErrUnavailable) {
		t.Errorf("caller that gave up: got %v, want ErrUnavailable", errs[0])
	}
	for i, err := range errs[1:] {
		if err != nil {
			t.Errorf("caller %d: %v", i+1, err)
		}
	}
}
