package sentry

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Real Link headers, as src/sentry/api/base.py builds them
// ('<{uri}&cursor={cursor}>; rel="{name}"; results="{has_results}"; cursor="{cursor}"').
var realLinkHeaders = []string{
	// GenericOffsetPaginator (project events), first page with more.
	`<https://sentry.io/api/0/projects/acme/backend/events/?&cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", <https://sentry.io/api/0/projects/acme/backend/events/?&cursor=0:100:0>; rel="next"; results="true"; cursor="0:100:0"`,
	// Offset paginator, last page (full page, but results="false").
	`<https://us.sentry.io/api/0/projects/acme/4508/events/?start=2026-01-01T00%3A00%3A00Z&end=2026-01-01T01%3A00%3A00Z&per_page=100&cursor=0:100:1>; rel="previous"; results="true"; cursor="0:100:1", <https://us.sentry.io/api/0/projects/acme/4508/events/?start=2026-01-01T00%3A00%3A00Z&end=2026-01-01T01%3A00%3A00Z&per_page=100&cursor=0:300:0>; rel="next"; results="false"; cursor="0:300:0"`,
	// Docs example (issue events).
	`<https://sentry.io/api/0/organizations/acme/issues/123456/events/?&cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", <https://sentry.io/api/0/organizations/acme/issues/123456/events/?&cursor=0:100:0>; rel="next"; results="true"; cursor="0:100:0"`,
	// OffsetPaginator, page numbers (org projects).
	`<https://sentry.io/api/0/organizations/acme/projects/?per_page=100&cursor=100:0:1>; rel="previous"; results="false"; cursor="100:0:1", <https://sentry.io/api/0/organizations/acme/projects/?per_page=100&cursor=100:1:0>; rel="next"; results="true"; cursor="100:1:0"`,
	// DateTimePaginator keyset (audit logs, epoch ms).
	`<https://sentry.io/api/0/organizations/acme/audit-logs/?&cursor=1767225600000:0:1>; rel="previous"; results="false"; cursor="1767225600000:0:1", <https://sentry.io/api/0/organizations/acme/audit-logs/?&cursor=1767139200123:1:0>; rel="next"; results="true"; cursor="1767139200123:1:0"`,
	// SequencePaginator (issues sort=date) with a query containing commas.
	`<https://sentry.io/api/0/organizations/acme/issues/?limit=100&query=is:unresolved,level:error&cursor=1767225600000:0:1>; rel="previous"; results="false"; cursor="1767225600000:0:1", <https://sentry.io/api/0/organizations/acme/issues/?limit=100&query=is:unresolved,level:error&cursor=1767139200000:0:0>; rel="next"; results="false"; cursor="1767139200000:0:0"`,
	// Self-hosted, float cursor value.
	`<http://sentry.internal:9000/api/0/projects/acme/web/events/?&cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", <http://sentry.internal:9000/api/0/projects/acme/web/events/?&cursor=1.5:0:0>; rel="next"; results="true"; cursor="1.5:0:0"`,
}

func TestParseLink(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name   string
		header []string
		want   []link
	}{
		{
			name:   "sentry_offset_first_page",
			header: realLinkHeaders[:1],
			want: []link{
				{URL: "https://sentry.io/api/0/projects/acme/backend/events/?&cursor=0:0:1", Rel: "previous", Results: "false", Cursor: "0:0:1", HasCursor: true},
				{URL: "https://sentry.io/api/0/projects/acme/backend/events/?&cursor=0:100:0", Rel: "next", Results: "true", Cursor: "0:100:0", HasCursor: true},
			},
		},
		{
			name:   "comma_inside_uri_and_quoted_value",
			header: []string{`<https://x/?q=a,b>; rel="next"; results="true"; cursor="1,2:0:0", <https://y/>; rel=previous`},
			want: []link{
				{URL: "https://x/?q=a,b", Rel: "next", Results: "true", Cursor: "1,2:0:0", HasCursor: true},
				{URL: "https://y/", Rel: "previous"},
			},
		},
		{
			name:   "whitespace_case_and_unquoted_values",
			header: []string{"  <u1> ;REL = next ;\tResults=true; CURSOR = 0:5:0 ,\n<u2>"},
			want: []link{
				{URL: "u1", Rel: "next", Results: "true", Cursor: "0:5:0", HasCursor: true},
				{URL: "u2"},
			},
		},
		{
			name:   "escaped_quote_and_semicolon_in_quoted_value",
			header: []string{`<u>; cursor="a\"b;c"; rel="next"`},
			want:   []link{{URL: "u", Rel: "next", Cursor: `a"b;c`, HasCursor: true}},
		},
		{
			name:   "first_occurrence_wins",
			header: []string{`<u>; rel="next"; rel="previous"; cursor="1"; cursor="2"`},
			want:   []link{{URL: "u", Rel: "next", Cursor: "1", HasCursor: true}},
		},
		{
			name:   "garbage_between_links_is_skipped",
			header: []string{`junk "with, comma", <u>; rel="next"; results="true"; cursor="c"`},
			want:   []link{{URL: "u", Rel: "next", Results: "true", Cursor: "c", HasCursor: true}},
		},
		{
			name:   "unterminated_uri",
			header: []string{`<u; rel="next"`},
			want:   nil,
		},
		{
			name:   "unterminated_quoted_value_keeps_earlier_params",
			header: []string{`<u>; rel="next"; cursor="abc`},
			want:   []link{{URL: "u", Rel: "next"}},
		},
		{
			name:   "multiple_header_values",
			header: []string{`<a>; rel="previous"`, `<b>; rel="next"; results="true"; cursor="x"`},
			want: []link{
				{URL: "a", Rel: "previous"},
				{URL: "b", Rel: "next", Results: "true", Cursor: "x", HasCursor: true},
			},
		},
		{
			name:   "empty",
			header: []string{"", " , ,"},
			want:   nil,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, parseLink(tc.header...)); diff != "" {
				t.Errorf("parseLink(%q) mismatch (-want +got):\n%s", tc.header, diff)
			}
		})
	}
}

func TestNextPage(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name       string
		header     []string
		wantCursor string
		wantNext   bool
		wantOK     bool
	}{
		{name: "offset_more", header: realLinkHeaders[:1], wantCursor: "0:100:0", wantNext: true, wantOK: true},
		{name: "offset_end_results_false", header: realLinkHeaders[1:2], wantCursor: "0:300:0", wantNext: false, wantOK: true},
		{name: "page_number", header: realLinkHeaders[3:4], wantCursor: "100:1:0", wantNext: true, wantOK: true},
		{name: "keyset", header: realLinkHeaders[4:5], wantCursor: "1767139200123:1:0", wantNext: true, wantOK: true},
		{name: "float_value", header: realLinkHeaders[6:7], wantCursor: "1.5:0:0", wantNext: true, wantOK: true},
		{name: "no_link_header", header: nil, wantOK: true},
		{name: "rel_list", header: []string{`<u>; rel="prefetch next"; results="true"; cursor="0:1:0"`}, wantCursor: "0:1:0", wantNext: true, wantOK: true},
		{name: "results_missing_means_end", header: []string{`<u>; rel="next"; cursor="0:1:0"`}, wantCursor: "0:1:0", wantOK: true},
		{name: "cursor_from_uri_when_attribute_missing", header: []string{`<https://h/x/?per_page=100&cursor=0%3A200%3A0>; rel="next"; results="true"`}, wantCursor: "0:200:0", wantNext: true, wantOK: true},
		{name: "results_true_without_any_cursor", header: []string{`<https://h/x/>; rel="next"; results="true"`}, wantOK: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cur, more, ok := nextPage(tc.header)
			if cur != tc.wantCursor || more != tc.wantNext || ok != tc.wantOK {
				t.Errorf("nextPage = (%q, %v, %v), want (%q, %v, %v)", cur, more, ok, tc.wantCursor, tc.wantNext, tc.wantOK)
			}
		})
	}
}

// FuzzParseLink checks the parser's invariants on arbitrary input and on
// Sentry-shaped headers built around arbitrary cursors and URIs.
func FuzzParseLink(f *testing.F) {
	for _, h := range realLinkHeaders {
		f.Add(h, "0:100:0", "https://sentry.io/api/0/projects/acme/backend/events/?&", true)
	}
	f.Add(`<a,b>; rel="next"; results="true"; cursor="x\"y"`, `c,"d\`, "u?q=1,2;3", false)
	f.Add(`<u>; rel=next; results=true; cursor=0:1:0`, "", "", true)
	f.Add("", "1767139200123:1:0", "https://de.sentry.io/x?", false)
	f.Fuzz(func(t *testing.T, header, cursor, uri string, results bool) {
		// 1. Arbitrary input: no panic; parse∘format is the identity on
		// whatever parseLink returns.
		links := parseLink(header)
		again := parseLink(formatLink(links))
		if diff := cmp.Diff(links, again); diff != "" {
			t.Fatalf("parse(format(parse(%q))) differs (-first +second):\n%s", header, diff)
		}
		for _, l := range links {
			if strings.Contains(l.URL, ">") {
				t.Fatalf("URL %q contains '>'", l.URL)
			}
		}
		cur, more, ok := nextPage([]string{header})
		if more && cur == "" {
			t.Fatalf("nextPage(%q): hasNext with empty cursor", header)
		}
		if !ok && more {
			t.Fatalf("nextPage(%q): not ok but hasNext", header)
		}

		// 2. A Sentry-shaped header around arbitrary cursor and URI: the
		// cursor round-trips exactly, and hasNext follows results.
		uri = strings.ReplaceAll(uri, ">", "")
		res := "false"
		if results {
			res = "true"
		}
		prev := link{URL: uri + "cursor=0:0:1", Rel: "previous", Results: "false", Cursor: "0:0:1", HasCursor: true}
		next := link{URL: uri + "cursor=" + strings.ReplaceAll(cursor, ">", ""), Rel: "next", Results: res, Cursor: cursor, HasCursor: true}
		built := formatLink([]link{prev, next})
		got := parseLink(built)
		if diff := cmp.Diff([]link{prev, next}, got); diff != "" {
			t.Fatalf("parseLink(%q) mismatch (-want +got):\n%s", built, diff)
		}
		cur, more, ok = nextPage([]string{built})
		if !ok && more {
			t.Fatalf("nextPage(%q): not ok but hasNext", built)
		}
		if cursor != "" && (more != results || (more && cur != cursor)) {
			t.Fatalf("nextPage(%q) = (%q, %v, %v), want cursor %q hasNext %v", built, cur, more, ok, cursor, results)
		}
	})
}
