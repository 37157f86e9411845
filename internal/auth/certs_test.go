package auth_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"google.golang.org/api/idtoken"

	"github.com/secops-collectors/sentry-gcs/internal/auth"
	"github.com/secops-collectors/sentry-gcs/internal/auth/authtest"
)

// redirectTo sends every request to the server at base (on 127.0.0.1),
// keeping the path, so that idtoken's fixed Google URLs reach a local fake.
func redirectTo(base string) http.RoundTripper {
	u, err := url.Parse(base)
	if err != nil {
		panic(err)
	}
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host, r.Host = u.Scheme, u.Host, ""
		return http.DefaultTransport.RoundTrip(r)
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// hangingServer completes the TCP (and HTTP) exchange but never answers
// until the test ends.
func hangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv
}

// TestGoogleValidator_unavailable points the certificate fetch at endpoints
// on 127.0.0.1 that hang, fail or answer garbage: verification must end
// within the fetch timeout with ErrUnavailable (503), not ErrInvalidToken
// (401), and must not hang.
func TestGoogleValidator_unavailable(t *testing.T) {
	t.Parallel()

	signer := authtest.NewSigner(t)
	token := "Bearer " + signer.Token(t, authtest.PushClaims(audience, pushSA))
	answer := func(status int, body string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	refused := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := "http://" + ln.Addr().String()
		_ = ln.Close()
		return addr
	}
	const fetchTimeout = 200 * time.Millisecond
	cases := []struct {
		name string
		base string
	}{
		{name: "hangs", base: hangingServer(t).URL},
		{name: "answers_503", base: answer(http.StatusServiceUnavailable, "busy").URL},
		{name: "answers_html", base: answer(http.StatusOK, "<html>captive portal</html>").URL},
		{name: "connection_refused", base: refused()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := auth.NewGoogleValidator(t.Context(), auth.ValidatorOptions{Transport: redirectTo(tc.base), FetchTimeout: fetchTimeout})
			if err != nil {
				t.Fatal(err)
			}
			verifier, err := auth.NewVerifier(v, audience, []string{pushSA})
			if err != nil {
				t.Fatal(err)
			}
			// A safety net so that a regression fails instead of hanging.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			start := time.Now()
			_, err = verifier.Verify(ctx, token)
			elapsed := time.Since(start)
			if !errors.Is(err, auth.ErrUnavailable) || errors.Is(err, auth.ErrInvalidToken) {
				t.Errorf("got %v, want ErrUnavailable (and not ErrInvalidToken)", err)
			}
			if elapsed > 2*time.Second {
				t.Errorf("verification took %v with a fetch timeout of %v", elapsed, fetchTimeout)
			}
		})
	}
}

// TestVerifier_timeout bounds a verification whose validator never returns
// by itself.
func TestVerifier_timeout(t *testing.T) {
	t.Parallel()

	signer := authtest.NewSigner(t)
	verifier, err := auth.NewVerifier(stuckValidator{}, audience, []string{pushSA})
	if err != nil {
		t.Fatal(err)
	}
	verifier = verifier.WithTimeout(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err = verifier.Verify(ctx, "Bearer "+signer.Token(t, authtest.PushClaims(audience, pushSA)))
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("got %v, want ErrUnavailable", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("verification took %v with a timeout of 100ms", elapsed)
	}
}

// stuckValidator waits for its context, like a validator whose certificate
// fetch never completes.
type stuckValidator struct{}

func (stuckValidator) Validate(ctx context.Context, _, _ string) (*idtoken.Payload, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestGoogleValidator_validToken checks that the shared fetch hands idtoken a
// usable document and its caching headers: a valid token passes, and the
// certificates are fetched once for several verifications.
func TestGoogleValidator_validToken(t *testing.T) {
	t.Parallel()

	signer := authtest.NewSigner(t)
	v, err := auth.NewGoogleValidator(t.Context(), auth.ValidatorOptions{Transport: signer.Transport(), FetchTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier(v, audience, []string{pushSA})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		id, err := verifier.Verify(t.Context(), "Bearer "+signer.Token(t, authtest.PushClaims(audience, pushSA)))
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if got, want := id.Email, pushSA; got != want {
			t.Errorf("email got %q, want %q", got, want)
		}
	}
	if got, want := signer.CertFetches(), int64(1); got != want {
		t.Errorf("certificate fetches got %d, want %d", got, want)
	}
}
