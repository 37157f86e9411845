package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"
)

// Defaults of NewGoogleValidator and NewVerifier.
const (
	// DefaultCertFetchTimeout bounds one fetch of Google's signing
	// certificates. Google answers in well under a second; without a
	// bound, an endpoint that completes TLS and never answers holds every
	// push request forever.
	DefaultCertFetchTimeout = 10 * time.Second
	// DefaultVerifyTimeout bounds one verification, a certificate fetch
	// included.
	DefaultVerifyTimeout = 15 * time.Second
	// maxCertsBytes bounds the certificate document (a few KB).
	maxCertsBytes = 1 << 20
)

// errCertsFetch marks a failure to fetch the signing certificates: the
// endpoint could not be reached, was too slow, or answered something other
// than a JSON document with 200. VerifyToken reports it as ErrUnavailable.
var errCertsFetch = errors.New("failed to fetch Google's signing certificates")

// ValidatorOptions configure NewGoogleValidator.
type ValidatorOptions struct {
	// Transport carries the certificate fetches (default: a clone of
	// http.DefaultTransport).
	Transport http.RoundTripper
	// FetchTimeout bounds one certificate fetch (default
	// DefaultCertFetchTimeout).
	FetchTimeout time.Duration
}

// NewGoogleValidator returns the idtoken validator of Google-signed ID
// tokens with an HTTP client built for a server: every certificate fetch is
// bounded by FetchTimeout, and concurrent fetches of the same document share
// one request. (idtoken caches the certificates for their max-age, but on a
// miss every concurrent validation fetches them itself, and a failed fetch
// is not cached.) A failed fetch makes VerifyToken return ErrUnavailable.
// Building it makes no network call.
func NewGoogleValidator(ctx context.Context, opts ValidatorOptions) (*idtoken.Validator, error) {
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = DefaultCertFetchTimeout
	}
	hc := &http.Client{
		Transport: &sharedFetch{base: opts.Transport, timeout: opts.FetchTimeout},
		Timeout:   opts.FetchTimeout,
	}
	v, err := idtoken.NewValidator(ctx, option.WithHTTPClient(hc))
	if err != nil {
		return nil, fmt.Errorf("failed to build the idtoken validator: %w", err)
	}
	return v, nil
}

// sharedFetch is a RoundTripper for GETs of small documents: concurrent
// requests for the same URL share one round trip to base, bounded by timeout
// and detached from the first caller's cancellation (another caller may
// still wait for it). Each caller waits at most until its own context ends.
// A transport error, a status other than 200 or a body that is not JSON is
// an error wrapping errCertsFetch.
type sharedFetch struct {
	base    http.RoundTripper
	timeout time.Duration
	group   singleflight.Group
	// joined, when set (tests), is called each time a caller starts
	// waiting for a fetch.
	joined func()
}

// fetched is a shared answer; each caller gets its own copy.
type fetched struct {
	header http.Header
	body   []byte
}

func (s *sharedFetch) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet {
		return nil, fmt.Errorf("%w: unexpected %s %s", errCertsFetch, req.Method, req.URL.Redacted())
	}
	if req.Body != nil {
		_ = req.Body.Close() // RoundTrip must close it; a GET has none to send
	}
	url := req.URL.String()
	ch := s.group.DoChan(url, func() (any, error) { return s.fetch(req) })
	if s.joined != nil {
		s.joined()
	}
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		f := res.Val.(*fetched)
		return &http.Response{
			Status:        "200 OK",
			StatusCode:    http.StatusOK,
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        f.header.Clone(), // idtoken reads Cache-Control and Age
			Body:          io.NopCloser(bytes.NewReader(f.body)),
			ContentLength: int64(len(f.body)),
			Request:       req,
		}, nil
	case <-req.Context().Done():
		return nil, fmt.Errorf("%w: %s: %w", errCertsFetch, url, req.Context().Err())
	}
}

// fetch performs the shared round trip.
func (s *sharedFetch) fetch(req *http.Request) (*fetched, error) {
	url := req.URL.String()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), s.timeout)
	defer cancel()
	out := req.Clone(ctx)
	out.Body = nil
	resp, err := s.base.RoundTrip(out)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errCertsFetch, url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s answered %s", errCertsFetch, url, strconv.Quote(resp.Status))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCertsBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %s: failed to read the body: %w", errCertsFetch, url, err)
	case len(body) > maxCertsBytes:
		return nil, fmt.Errorf("%w: %s: the document exceeds %d bytes", errCertsFetch, url, maxCertsBytes)
	case !json.Valid(body):
		return nil, fmt.Errorf("%w: %s: the document is not JSON", errCertsFetch, url)
	}
	return &fetched{header: resp.Header.Clone(), body: body}, nil
}
