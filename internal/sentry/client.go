// This file is over 400 lines because it is the client's one request loop
// (pacing, retries, error answers, redaction): split, its invariants would
// be read across files.

// Package sentry is a client for the parts of Sentry's web API that the
// collector reads: organisation details, projects, project events, issues,
// audit logs, stats_v2 and Discover (the organisation events endpoint).
//
// It follows Sentry's Link-header pagination exactly (the cursor attribute of
// rel="next", followed only while results="true"), keeps each row's raw JSON
// bytes, paces itself from the X-Sentry-Rate-Limit-* headers through a
// process-wide limiter registry, retries transient failures with exponential
// backoff and full jitter, and reports configuration errors (401, 403, 404,
// renamed projects) as typed, permanent errors that carry Sentry's detail.
// The token never appears in errors or logs.
package sentry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/buildinfo"
	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// DefaultBaseURL is Sentry SaaS (the control silo, which forwards region
// endpoints to the organisation's region).
const DefaultBaseURL = "https://sentry.io"

const (
	defaultMaxAttempts = 8
	backoffBase        = 500 * time.Millisecond
	backoffMax         = 30 * time.Second
	defaultHTTPTimeout = 2 * time.Minute
	// maxDetailLen bounds each text an APIError takes from the answer
	// (detail, code, slug, Location).
	maxDetailLen = 300
)

// DefaultMaxBodyBytes is the default limit of one answer's body. A page has at
// most 100 rows, and the list endpoints return event and issue summaries
// (not full event payloads: Sentry refuses events over 1 MB even at
// ingestion), so real pages are a few hundred KB. Reading a body costs about
// twice its size (the growing buffer, then the rows kept from it), and a few
// pages may be in flight at once (one per stream): 32 MiB leaves that well
// inside the 512 MiB Cloud Run container, where 256 MiB did not.
const DefaultMaxBodyBytes = 32 << 20

// Options configure a Client.
type Options struct {
	BaseURL     string       // default DefaultBaseURL; may be a region host or self-hosted root (no /api/0)
	Token       string       // Bearer token; never appears in errors or logs
	UserAgent   string       // default buildinfo.UserAgent()
	HTTPClient  *http.Client // default: client with sane timeouts; redirects are never followed
	Limiters    *Limiters    // process-wide registry; nil => private one
	Clock       clock.Clock  // default clock.Real{}
	MaxAttempts int          // per request incl. first; default 8; retries also bounded by ctx
	Logger      *slog.Logger // for calls whose context carries no logger (logging.WithLogger); optional
	// MaxBodyBytes limits one answer's body; a larger one is a permanent
	// *BodyTooLargeError. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// Client calls Sentry's web API. It is safe for concurrent use.
type Client struct {
	base        string // scheme://host[/prefix], no trailing slash
	baseErr     error
	token       string
	tokenHash   [sha256.Size]byte
	userAgent   string
	hc          *http.Client
	limiters    *Limiters
	clock       clock.Clock
	maxAttempts int
	logger      *slog.Logger
	maxBody     int64
	metrics     *metrics
}

// Metrics are cumulative request counters of a Client and its WithBaseURL
// copies.
type Metrics struct {
	Requests     int64 // HTTP attempts sent
	RateLimited  int64 // 429 answers
	Retries      int64 // attempts after the first
	ServerErrors int64 // 5xx answers
}

type metrics struct {
	requests, rateLimited, retries, serverErrors atomic.Int64
}

// New validates opts and returns a Client.
func New(opts Options) (*Client, error) {
	if opts.Token == "" {
		return nil, errors.New("sentry: a token is required")
	}
	for i := 0; i < len(opts.Token); i++ {
		if c := opts.Token[i]; c <= ' ' || c == 0x7f {
			return nil, errors.New("sentry: the token contains whitespace or control characters")
		}
	}
	if opts.MaxAttempts < 0 {
		return nil, fmt.Errorf("sentry: MaxAttempts must not be negative, got %d", opts.MaxAttempts)
	}
	if opts.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("sentry: MaxBodyBytes must not be negative, got %d", opts.MaxBodyBytes)
	}
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	base, err := normalizeBase(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:        base,
		token:       opts.Token,
		tokenHash:   sha256.Sum256([]byte(opts.Token)),
		userAgent:   opts.UserAgent,
		limiters:    opts.Limiters,
		clock:       opts.Clock,
		maxAttempts: opts.MaxAttempts,
		logger:      opts.Logger,
		maxBody:     opts.MaxBodyBytes,
		metrics:     &metrics{},
	}
	if c.userAgent == "" {
		c.userAgent = buildinfo.UserAgent()
	}
	if c.limiters == nil {
		c.limiters = NewLimiters()
	}
	if c.clock == nil {
		c.clock = clock.Real{}
	}
	if c.maxAttempts == 0 {
		c.maxAttempts = defaultMaxAttempts
	}
	if c.maxBody == 0 {
		c.maxBody = DefaultMaxBodyBytes
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	var hc http.Client
	if opts.HTTPClient != nil {
		hc = *opts.HTTPClient // a copy: the caller's client keeps its redirect policy
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = 60 * time.Second
		t.MaxIdleConnsPerHost = 32
		hc = http.Client{Transport: t, Timeout: defaultHTTPTimeout}
	}
	// Never follow redirects: a 302 means a renamed project (reported), and a
	// cross-host redirect must not receive the token.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	return c, nil
}

// normalizeBase validates a base URL and strips a trailing "/" or "/api/0".
func normalizeBase(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	s = strings.TrimRight(s, "/")
	s = strings.TrimSuffix(s, "/api/0")
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("sentry: invalid base URL %q: %w", raw, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("sentry: invalid base URL %q: want http(s)://host[/prefix]", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// WithBaseURL returns a copy of c that talks to base (for example an
// organisation's links.regionUrl) with the same token, limiters, clock and
// metrics. An invalid base makes every call of the copy fail.
func (c *Client) WithBaseURL(base string) *Client {
	cp := *c
	cp.base, cp.baseErr = normalizeBase(base)
	return &cp
}

// BaseURL returns the normalised base URL the client calls.
func (c *Client) BaseURL() string { return c.base }

// Metrics returns the cumulative counters (shared with WithBaseURL copies).
func (c *Client) Metrics() Metrics {
	return Metrics{
		Requests:     c.metrics.requests.Load(),
		RateLimited:  c.metrics.rateLimited.Load(),
		Retries:      c.metrics.retries.Load(),
		ServerErrors: c.metrics.serverErrors.Load(),
	}
}

// call describes one API request.
type call struct {
	group    string     // limiter group
	endpoint string     // "GET /api/0/…/{org}/…/" template
	path     string     // escaped concrete path
	query    url.Values // nil for none
	scope    string     // token scope the endpoint requires
}

// get performs cl with pacing and retries, and hands a 2xx body to decode.
// A decode error wrapping errSyntax or errMalformed is transient (truncated /
// non-JSON body, missing Link header); one wrapping errShape is permanent.
// answer handles one HTTP answer: it releases the limiter with the answer's
// rate-limit headers, and decodes a 2xx body. It returns the final outcome
// (nil: decoded), or, when the request should be tried again, retryErr and
// whether the answer was a 429.
func (c *Client) answer(cl call, lim *limiter, status int, hdr http.Header, body []byte, decode func(body []byte, h http.Header) error) (final, retryErr error, is429 bool) {
	var apiErr *APIError
	if status < 200 || status > 299 {
		apiErr = c.apiError(cl, status, hdr, body)
	}
	conc429 := status == http.StatusTooManyRequests && apiErr != nil &&
		strings.Contains(strings.ToLower(apiErr.Detail), "concurren")
	lim.release(c.clock, status, parseRateHeaders(hdr), conc429)
	switch {
	case status >= 500:
		c.metrics.serverErrors.Add(1)
	case status == http.StatusTooManyRequests:
		c.metrics.rateLimited.Add(1)
	}
	if apiErr != nil {
		if !retryableStatus(status, apiErr.Detail) {
			return apiErr, nil, false
		}
		return nil, apiErr, status == http.StatusTooManyRequests
	}
	derr := decode(body, hdr)
	switch {
	case derr == nil:
		return nil, nil, false
	case errors.Is(derr, errSyntax) || errors.Is(derr, errMalformed):
		return nil, &bodyError{endpoint: cl.endpoint, err: derr}, false
	case errors.Is(derr, errShape):
		return &ShapeError{Endpoint: cl.endpoint, Msg: derr.Error()}, nil, false
	}
	return derr, nil, false
}

func (c *Client) get(ctx context.Context, cl call, decode func(body []byte, h http.Header) error) error {
	if c.baseErr != nil {
		return c.baseErr
	}
	lim := c.limiters.get(c.tokenHash, cl.group)
	u := c.base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var lastErr error
	last429 := false
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			c.metrics.retries.Add(1)
		}
		if _, err := lim.acquire(ctx, c.clock); err != nil {
			return c.giveUp(cl, attempt-1, lastErr, last429, err)
		}
		status, hdr, body, err := c.do(ctx, u)
		if tl := (*BodyTooLargeError)(nil); errors.As(err, &tl) {
			lim.release(c.clock, status, parseRateHeaders(hdr), false)
			tl.Endpoint, tl.Path = cl.endpoint, cl.path
			return tl
		}
		if err != nil {
			lim.releaseNoResponse()
			if ctx.Err() != nil {
				return c.giveUp(cl, attempt, lastErr, last429, ctx.Err())
			}
			lastErr, last429 = fmt.Errorf("sentry: %s: %w", cl.endpoint, c.redactErr(err)), false
		} else {
			final, retryErr, is429 := c.answer(cl, lim, status, hdr, body, decode)
			if retryErr == nil {
				return final
			}
			lastErr, last429 = retryErr, is429
		}
		if attempt >= c.maxAttempts {
			return c.giveUp(cl, attempt, lastErr, last429, nil)
		}
		// A non-concurrency 429 with a Reset header has put the limiter into a
		// wait until Reset + jitter; acquire performs it. Everything else
		// backs off exponentially with full jitter.
		wait := time.Duration(0)
		if !last429 || !lim.blocked(c.clock) {
			wait = backoff(attempt)
		}
		c.loggerFor(ctx).WarnContext(ctx, "sentry request failed, retrying",
			"endpoint", cl.endpoint, "attempt", attempt, "max_attempts", c.maxAttempts,
			"backoff_seconds", wait.Seconds(), "error", lastErr.Error())
		if wait > 0 {
			if err := c.clock.Sleep(ctx, wait); err != nil {
				return c.giveUp(cl, attempt, lastErr, last429, err)
			}
		}
	}
}

// loggerFor returns the logger of ctx when it carries one (a push request's
// logger has its trace and message id), else the client's: the client is
// shared by the whole process and its own logger knows no request.
func (c *Client) loggerFor(ctx context.Context) *slog.Logger {
	if l, ok := logging.FromContextOK(ctx); ok {
		return l
	}
	return c.logger
}

// giveUp builds the error returned when attempts or the context ran out.
func (c *Client) giveUp(cl call, attempts int, lastErr error, last429 bool, ctxErr error) error {
	var errs []error
	if last429 {
		errs = append(errs, ErrRateLimited)
	}
	if ctxErr != nil {
		errs = append(errs, ctxErr)
	}
	if lastErr != nil {
		errs = append(errs, lastErr)
	}
	if len(errs) == 0 {
		return fmt.Errorf("failed to call sentry %s", cl.endpoint)
	}
	format := "failed to call sentry %s after %d attempt(s)" + strings.Repeat(": %w", len(errs))
	return fmt.Errorf(format, append([]any{cl.endpoint, attempts}, toAny(errs)...)...)
}

func toAny(errs []error) []any {
	out := make([]any, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return out
}

// backoff is exponential with full jitter: uniform in (0, min(max, base·2^(n-1))].
func backoff(attempt int) time.Duration {
	d := backoffMax
	if attempt < 16 {
		d = min(backoffMax, backoffBase<<(attempt-1))
	}
	return time.Duration(rand.Int64N(int64(d))) + time.Millisecond
}

// blocked reports whether the limiter holds requests back right now.
func (l *limiter) blocked(clk clock.Clock) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return clk.Now().Before(l.blockedUntil)
}

// do sends one GET and reads the whole body. A body over c.maxBody is a
// *BodyTooLargeError (with the status and headers), detected from the
// Content-Length before reading when there is one.
func (c *Client) do(ctx context.Context, u string) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("failed to build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	c.metrics.requests.Add(1)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	tooLarge := &BodyTooLargeError{StatusCode: resp.StatusCode, Limit: c.maxBody}
	if resp.ContentLength > c.maxBody {
		return resp.StatusCode, resp.Header, nil, tooLarge
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("failed to read response body (HTTP %d): %w", resp.StatusCode, err)
	}
	if n > c.maxBody {
		return resp.StatusCode, resp.Header, nil, tooLarge
	}
	return resp.StatusCode, resp.Header, buf.Bytes(), nil
}

// redactErr removes the token from a transport error's text, should any
// layer ever echo it.
func (c *Client) redactErr(err error) error {
	if !strings.Contains(err.Error(), c.token) {
		return err
	}
	return errors.New(c.redact(err.Error()))
}

func (c *Client) redact(s string) string {
	return strings.ReplaceAll(s, c.token, "[REDACTED]")
}

// apiError turns a non-2xx answer into an *APIError; the body is only mined
// for Sentry's "detail" (and a renamed project's new slug). Every text taken
// from the answer is redacted first and then abbreviated to maxDetailLen:
// abbreviating first could cut an echoed token so that the redaction no
// longer matches and most of it stays, and an unbounded detail makes log
// lines that Cloud Logging drops (over 256 KB).
func (c *Client) apiError(cl call, status int, hdr http.Header, body []byte) *APIError {
	e := &APIError{StatusCode: status, Endpoint: cl.endpoint, Path: cl.path, Scope: cl.scope}
	if status >= 300 && status < 400 {
		e.Location = hdr.Get("Location")
	}
	mt, _, _ := mime.ParseMediaType(hdr.Get("Content-Type"))
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
	case validJSON(trimmed) != nil:
		if mt == "" {
			mt = "unknown content type"
		}
		e.Detail = fmt.Sprintf("non-JSON response body (%s, %d bytes)", c.clip(mt), len(body))
	default:
		var doc struct {
			Detail json.RawMessage `json:"detail"`
			Slug   string          `json:"slug"`
		}
		if trimmed[0] != '{' || json.Unmarshal(trimmed, &doc) != nil || len(doc.Detail) == 0 {
			e.Detail = string(trimmed)
			break
		}
		var s string
		if json.Unmarshal(doc.Detail, &s) == nil {
			e.Detail = s
		} else {
			var obj struct {
				Code    string `json:"code"`
				Message string `json:"message"`
				Extra   struct {
					Slug string `json:"slug"`
				} `json:"extra"`
			}
			if json.Unmarshal(doc.Detail, &obj) == nil {
				e.Detail, e.Code = obj.Message, obj.Code
				if e.NewSlug == "" {
					e.NewSlug = obj.Extra.Slug
				}
			}
			if e.Detail == "" && e.Code == "" && e.NewSlug == "" {
				e.Detail = string(doc.Detail)
			}
		}
		if doc.Slug != "" {
			e.NewSlug = doc.Slug
		}
	}
	e.Detail = c.clip(e.Detail)
	e.Code = c.clip(e.Code)
	e.NewSlug = c.clip(e.NewSlug)
	e.Location = c.clip(e.Location)
	if status >= 300 && status < 400 && e.Detail == "" {
		if e.NewSlug != "" {
			e.Detail = "project moved"
		} else {
			e.Detail = "redirect"
		}
	}
	return e
}

// clip redacts the token from s, then clips it to maxDetailLen bytes.
func (c *Client) clip(s string) string {
	return logging.Clip(c.redact(s), maxDetailLen)
}
