package sentry

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// minLeak is the shortest piece of the token that counts as a leak: eight
// characters of a 57-character token are enough to help guess it, and fewer
// collide with ordinary text.
const minLeak = 8

// leakedPiece returns the first piece of the token, at least minLeak long,
// found in s, or "".
func leakedPiece(s string) string {
	for i := 0; i+minLeak <= len(testToken); i++ {
		if p := testToken[i : i+minLeak]; strings.Contains(s, p) {
			return p
		}
	}
	return ""
}

// TestAPIErrorRedactsBeforeAbbreviating puts the token (as a proxy echoing
// the Authorization header would) across the abbreviation boundary of the
// error detail, at every offset: no piece of it may survive in the error or
// in the retry log.
func TestAPIErrorRedactsBeforeAbbreviating(t *testing.T) {
	t.Parallel()

	shapes := []struct {
		name string
		// body returns a JSON body in which the text the detail is
		// abbreviated from has the token at byte offset at.
		body func(at int) string
	}{
		{name: "object_without_detail", body: func(at int) string {
			const before = `{"Authorization: Bearer `
			return before + strings.Repeat("x", at-len(before)) + testToken + ` trailing text":1}`
		}},
		{name: "detail_neither_string_nor_object", body: func(at int) string {
			const before = `["Bearer `
			return `{"detail":` + before + strings.Repeat("x", at-len(before)) + testToken + ` trailing text"]}`
		}},
	}
	for _, shape := range shapes {
		t.Run(shape.name, func(t *testing.T) {
			t.Parallel()
			// The token starts anywhere from well before the boundary
			// (wholly kept) to just after it (wholly cut).
			for start := maxDetailLen - len(testToken) - 30; start <= maxDetailLen+2; start++ {
				body := shape.body(start)
				for _, status := range []int{http.StatusBadRequest, http.StatusInternalServerError} {
					var logs bytes.Buffer
					var mu sync.Mutex
					c, _ := newTestClient(t, newScript(func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, status, body) }), clock.NewFake(t0), func(o *Options) {
						o.MaxAttempts = 2
						o.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
					})
					_, err := c.ListEvents(t.Context(), EventsQuery{Org: "acme", Project: "1"})
					if err == nil {
						t.Fatal("no error")
					}
					mu.Lock()
					logged := logs.String()
					mu.Unlock()
					if p := leakedPiece(err.Error()); p != "" {
						t.Fatalf("status %d, token at %d: error contains %q: %s", status, start, p, err)
					}
					if p := leakedPiece(logged); p != "" {
						t.Fatalf("status %d, token at %d: log contains %q: %s", status, start, p, logged)
					}
				}
			}
		})
	}
}

// TestAPIErrorFieldsAreBounded feeds Sentry error answers with huge fields:
// each field of the APIError, the error text and every log line stay short
// (Cloud Logging drops lines over 256 KB, and the error text is logged more
// than once on its way up).
func TestAPIErrorFieldsAreBounded(t *testing.T) {
	t.Parallel()

	huge := strings.Repeat("A", 2<<20)
	// A bound on the whole error text: the fixed parts (endpoint, status,
	// hint) plus four bounded fields.
	const maxErrorLen = 4*(maxDetailLen+logging.MaxClipMark) + 1000
	cases := []struct {
		name    string
		status  int
		header  http.Header
		body    string
		wantErr string // a substring the error still has
	}{
		{name: "string_detail_500", status: 500, body: fmt.Sprintf(`{"detail":%q}`, huge), wantErr: "AAAA…"},
		{name: "string_detail_404", status: 404, body: fmt.Sprintf(`{"detail":%q}`, huge), wantErr: "404 Not Found"},
		{name: "object_message_401", status: 401, body: fmt.Sprintf(`{"detail":{"code":%q,"message":%q}}`, huge, huge), wantErr: "(code AAAA"},
		{name: "renamed_slug_302", status: 302, header: http.Header{"Location": {"/" + huge[:200<<10]}},
			body: fmt.Sprintf(`{"slug":%q,"detail":{"code":"resource-moved","message":"Resource has been moved","extra":{"slug":%q}}}`, huge, huge), wantErr: "renamed to"},
		{name: "object_without_detail_400", status: 400, body: fmt.Sprintf(`{"x":%q}`, huge), wantErr: "400 Bad Request"},
		{name: "non_json_500_content_type", status: 500, header: http.Header{"Content-Type": {"text/" + huge[:200<<10]}}, body: "<html>", wantErr: "non-JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			var mu sync.Mutex
			h := func(w http.ResponseWriter, _ *http.Request) {
				for k, vs := range tc.header {
					w.Header()[k] = vs
				}
				if w.Header().Get("Content-Type") == "" {
					w.Header().Set("Content-Type", "application/json")
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}
			c, _ := newTestClient(t, newScript(h), clock.NewFake(t0), func(o *Options) {
				o.MaxAttempts = 2
				o.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
			})
			_, err := c.ListEvents(t.Context(), EventsQuery{Org: "acme", Project: "1"})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %.500q does not contain %q", err.Error(), tc.wantErr)
			}
			if n := len(err.Error()); n > maxErrorLen {
				t.Errorf("error text is %d bytes, want at most %d", n, maxErrorLen)
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %.300v, want an *APIError", err)
			}
			for name, v := range map[string]string{"Detail": ae.Detail, "Code": ae.Code, "NewSlug": ae.NewSlug, "Location": ae.Location} {
				if n := len(v); n > maxDetailLen+logging.MaxClipMark {
					t.Errorf("%s is %d bytes, want at most %d", name, n, maxDetailLen+logging.MaxClipMark)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			longest := 0
			for _, line := range strings.Split(logs.String(), "\n") {
				longest = max(longest, len(line))
			}
			if longest > maxErrorLen+500 {
				t.Errorf("longest log line is %d bytes, want at most %d", longest, maxErrorLen+500)
			}
			t.Logf("error text %d bytes, longest log line %d bytes", len(err.Error()), longest)
		})
	}
}
