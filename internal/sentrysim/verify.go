package sentrysim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Bucket is what Verify reads: object names under a prefix, and objects.
// sink.GCS, sink.Dir and sink.Memory implement it.
type Bucket interface {
	List(ctx context.Context, prefix string) ([]string, error)
	Read(ctx context.Context, name string) ([]byte, int64, error)
}

// Report is what Verify found in a bucket, compared with the ground truth.
type Report struct {
	Objects int
	Lines   int
	// Stored maps project id → event id → lines holding it.
	Stored map[string]map[string]int
	// Lost are events in the ground truth and not in the bucket; Duplicated
	// events on more than one line; Unknown events in the bucket and not in
	// the ground truth; Problems lines that are not compact event rows and
	// objects that do not end with a newline.
	Lost       []string
	Duplicated []string
	Unknown    []string
	Problems   []string

	truth map[string]map[string]bool
}

// OK reports whether the bucket holds every event of the ground truth
// exactly once and nothing else.
func (r *Report) OK() bool {
	return len(r.Lost)+len(r.Duplicated)+len(r.Unknown)+len(r.Problems) == 0
}

// Distinct is the number of distinct events stored.
func (r *Report) Distinct() int {
	n := 0
	for _, ids := range r.Stored {
		n += len(ids)
	}
	return n
}

// String summarises the report with a few examples of each defect.
func (r *Report) String() string {
	f := func(s []string) []string { return s[:min(len(s), 5)] }
	return fmt.Sprintf("objects=%d lines=%d distinct=%d lost=%d %v duplicated=%d %v unknown=%d %v problems=%d %q",
		r.Objects, r.Lines, r.Distinct(), len(r.Lost), f(r.Lost), len(r.Duplicated), f(r.Duplicated),
		len(r.Unknown), f(r.Unknown), len(r.Problems), f(r.Problems))
}

// Err is nil when the report is OK, else an error with the counts.
func (r *Report) Err() error {
	if r.OK() {
		return nil
	}
	return fmt.Errorf("the bucket does not match Sentry: %d lost, %d duplicated, %d unknown, %d lines that are not events",
		len(r.Lost), len(r.Duplicated), len(r.Unknown), len(r.Problems))
}

// Table writes one row per project: events in Sentry, lines in the bucket,
// lost, duplicated, unknown.
func (r *Report) Table(w io.Writer) {
	projects := make([]string, 0, len(r.truth)+len(r.Stored))
	for p := range r.truth {
		projects = append(projects, p)
	}
	for p := range r.Stored {
		if _, ok := r.truth[p]; !ok {
			projects = append(projects, p)
		}
	}
	slices.Sort(projects)
	fmt.Fprintf(w, "%d objects, %d lines\n", r.Objects, r.Lines)
	fmt.Fprintf(w, "%-10s %10s %10s %10s %10s %10s\n", "project", "in Sentry", "in bucket", "lost", "duplicated", "unknown")
	for _, p := range projects {
		var lost, dup, unknown, stored int
		for id := range r.truth[p] {
			if r.Stored[p][id] == 0 {
				lost++
			}
		}
		for id, n := range r.Stored[p] {
			stored += n
			dup += n - 1
			if !r.truth[p][id] {
				unknown++
			}
		}
		fmt.Fprintf(w, "%-10s %10d %10d %10d %10d %10d\n", p, len(r.truth[p]), stored, lost, dup, unknown)
	}
}

var eventIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Verify reads every object under prefix and compares the events found with
// truth (project id → event ids, as GroundTruth returns). Each line must be
// one compact JSON object shaped like a row of the project events endpoint
// (a 32-hex id, eventID equal to it when present, a projectID and an RFC 3339
// dateCreated).
func Verify(ctx context.Context, b Bucket, prefix string, truth map[string]map[string]bool) (*Report, error) {
	names, err := b.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("failed to list %s: %w", prefix, err)
	}
	r := &Report{Stored: make(map[string]map[string]int), truth: truth}
	for _, name := range names {
		data, _, err := b.Read(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("failed to read %s: %w", name, err)
		}
		r.Objects++
		if len(data) == 0 || data[len(data)-1] != '\n' {
			r.Problems = append(r.Problems, name+": empty, or its last line has no newline")
		}
		for i, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			r.Lines++
			id, project, err := checkEventLine(line)
			if err != nil {
				r.Problems = append(r.Problems, fmt.Sprintf("%s line %d: %v: %.80s", name, i+1, err, line))
				continue
			}
			if r.Stored[project] == nil {
				r.Stored[project] = make(map[string]int)
			}
			r.Stored[project][id]++
		}
	}
	for p, ids := range truth {
		for id := range ids {
			if r.Stored[p][id] == 0 {
				r.Lost = append(r.Lost, id)
			}
		}
	}
	for p, ids := range r.Stored {
		for id, n := range ids {
			if n > 1 {
				r.Duplicated = append(r.Duplicated, id)
			}
			if !truth[p][id] {
				r.Unknown = append(r.Unknown, id)
			}
		}
	}
	slices.Sort(r.Lost)
	slices.Sort(r.Duplicated)
	slices.Sort(r.Unknown)
	return r, nil
}

// checkEventLine checks that line is one compact JSON object shaped like a
// row of the project events endpoint, and returns its ids.
func checkEventLine(line []byte) (id, project string, err error) {
	if len(line) == 0 {
		return "", "", errors.New("empty line")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, line); err != nil {
		return "", "", fmt.Errorf("not JSON: %w", err)
	}
	if !bytes.Equal(compact.Bytes(), line) {
		return "", "", errors.New("not compact JSON")
	}
	var e struct {
		ID          *string `json:"id"`
		EventID     *string `json:"eventID"`
		ProjectID   *string `json:"projectID"`
		DateCreated *string `json:"dateCreated"`
	}
	if err := json.Unmarshal(line, &e); err != nil {
		return "", "", fmt.Errorf("not an event object: %w", err)
	}
	switch {
	case e.ID == nil || !eventIDRE.MatchString(*e.ID):
		return "", "", errors.New(`no 32-hex "id"`)
	case e.EventID != nil && *e.EventID != *e.ID:
		return "", "", errors.New(`"eventID" differs from "id"`)
	case e.ProjectID == nil || strings.TrimSpace(*e.ProjectID) == "":
		return "", "", errors.New(`no "projectID"`)
	case e.DateCreated == nil:
		return "", "", errors.New(`no "dateCreated"`)
	}
	if _, err := time.Parse(time.RFC3339Nano, *e.DateCreated); err != nil {
		return "", "", fmt.Errorf(`bad "dateCreated": %w`, err)
	}
	return *e.ID, *e.ProjectID, nil
}
