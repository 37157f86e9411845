package sentry

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/secops-collectors/sentry-gcs/internal/clock"
)

// bigPage serves a 200 with a JSON list of n bytes (a valid page of events
// padded with blanks), with or without a Content-Length.
func bigPage(n int, withLength bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		const row = `[{"id":"0000000000000000000000000000000a","projectID":"1","dateCreated":"2026-03-01T12:00:00Z"}`
		body := row + strings.Repeat(" ", n-len(row)-1) + "]"
		w.Header().Set("Link", sentryLink(r, "0:0:1", false, "0:100:0", false))
		w.Header().Set("Content-Type", "application/json")
		if withLength {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(body))
	}
}

func TestBodyOverDefaultCap(t *testing.T) {
	t.Parallel()

	const defaultCap = 32 << 20
	for _, withLength := range []bool{true, false} {
		t.Run("content_length_"+strconv.FormatBool(withLength), func(t *testing.T) {
			t.Parallel()
			sc := newScript(bigPage(defaultCap+1, withLength))
			c, _ := newTestClient(t, sc, clock.NewFake(t0), nil)
			_, err := c.ListEvents(t.Context(), EventsQuery{Org: "acme", Project: "1"})
			if err == nil {
				t.Fatal("a page over 32 MiB was accepted")
			}
			if !IsPermanent(err) {
				t.Errorf("IsPermanent = false for %v", err)
			}
			if n := len(sc.requests()); n != 1 {
				t.Errorf("requests = %d, want 1 (retrying cannot make the page smaller)", n)
			}
			for _, s := range []string{"GET /api/0/projects/acme/1/events/", "32 MiB"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
			var tl *BodyTooLargeError
			if !errors.As(err, &tl) {
				t.Errorf("err %v is not a *BodyTooLargeError", err)
			}
		})
	}
}

func TestMaxBodyBytes(t *testing.T) {
	t.Parallel()

	const limit = 4 << 10
	cases := []struct {
		name       string
		h          http.HandlerFunc
		wantErr    bool
		wantStatus int // of the *BodyTooLargeError
	}{
		{name: "at_limit_with_length", h: bigPage(limit, true)},
		{name: "at_limit_chunked", h: bigPage(limit, false)},
		{name: "over_limit_with_length", h: bigPage(limit+1, true), wantErr: true, wantStatus: 200},
		{name: "over_limit_chunked", h: bigPage(limit+1, false), wantErr: true, wantStatus: 200},
		{name: "error_answer_over_limit", h: detail(http.StatusServiceUnavailable, strings.Repeat("x", limit)), wantErr: true, wantStatus: 503},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sc := newScript(tc.h)
			c, _ := newTestClient(t, sc, clock.NewFake(t0), func(o *Options) { o.MaxBodyBytes = limit })
			p, err := c.ListEvents(t.Context(), EventsQuery{Org: "acme", Project: "1"})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr {
				if got, want := len(p.Items), 1; got != want {
					t.Errorf("items got %d, want %d", got, want)
				}
				return
			}
			var tl *BodyTooLargeError
			if !errors.As(err, &tl) {
				t.Fatalf("err %v is not a *BodyTooLargeError", err)
			}
			want := BodyTooLargeError{Endpoint: "GET /api/0/projects/{org}/{project}/events/", Path: "/api/0/projects/acme/1/events/",
				StatusCode: tc.wantStatus, Limit: limit}
			if diff := cmp.Diff(want, *tl); diff != "" {
				t.Errorf("BodyTooLargeError (-want +got):\n%s", diff)
			}
			if !strings.Contains(err.Error(), "4 KiB limit") {
				t.Errorf("error %q does not name the limit", err)
			}
			if !IsPermanent(err) {
				t.Errorf("IsPermanent = false for %v", err)
			}
			if n := len(sc.requests()); n != 1 {
				t.Errorf("requests = %d, want 1", n)
			}
		})
	}

	t.Run("negative_refused", func(t *testing.T) {
		t.Parallel()
		if _, err := New(Options{Token: testToken, MaxBodyBytes: -1}); err == nil {
			t.Error("New accepted a negative MaxBodyBytes")
		}
	})
}
