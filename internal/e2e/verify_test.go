package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
)

// contentTypeNDJSON is the content type of data objects.
const contentTypeNDJSON = "application/x-ndjson"

var eventIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// bucketView is what the bucket's data objects hold.
type bucketView struct {
	Objects int
	Lines   int
	// Events maps project id to the event ids stored for it.
	Events map[string]map[string]bool
	// Duplicates lists event ids stored more than once (with the objects).
	Duplicates []string
	// Problems lists objects or lines that are not well-formed events.
	Problems []string
}

// eventLine is the part of a Sentry event row the test checks.
type eventLine struct {
	ID          *string `json:"id"`
	EventID     *string `json:"eventID"`
	ProjectID   *string `json:"projectID"`
	DateCreated *string `json:"dateCreated"`
}

// readBucket reads every object under prefix and checks each line.
func readBucket(ctx context.Context, client *storage.Client, bucket, prefix string) (*bucketView, error) {
	v := &bucketView{Events: make(map[string]map[string]bool)}
	where := make(map[string]string) // event id → first object
	it := client.Bucket(bucket).Objects(ctx, &storage.Query{Prefix: prefix})
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("failed to list gs://%s/%s: %w", bucket, prefix, err)
		}
		v.Objects++
		name := attrs.Name
		if attrs.ContentType != contentTypeNDJSON {
			v.Problems = append(v.Problems, fmt.Sprintf("%s: content type %q, want %q", name, attrs.ContentType, contentTypeNDJSON))
		}
		r, err := client.Bucket(bucket).Object(name).Generation(attrs.Generation).NewReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("failed to open %s: %w", name, err)
		}
		data, err := io.ReadAll(r)
		_ = r.Close()
		if err != nil {
			return nil, fmt.Errorf("failed to read %s: %w", name, err)
		}
		if len(data) == 0 {
			v.Problems = append(v.Problems, name+": empty object")
			continue
		}
		if data[len(data)-1] != '\n' {
			v.Problems = append(v.Problems, name+": last line not terminated by a newline")
		}
		for i, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			v.Lines++
			at := fmt.Sprintf("%s line %d", name, i+1)
			id, project, err := checkEventLine(line)
			if err != nil {
				v.Problems = append(v.Problems, fmt.Sprintf("%s: %v: %.120s", at, err, line))
				continue
			}
			if first, dup := where[id]; dup {
				v.Duplicates = append(v.Duplicates, fmt.Sprintf("%s (in %s and %s)", id, first, at))
				continue
			}
			where[id] = at
			if v.Events[project] == nil {
				v.Events[project] = make(map[string]bool)
			}
			v.Events[project][id] = true
		}
	}
	return v, nil
}

// checkEventLine checks that line is one compact JSON object that looks like
// a row of Sentry's project events endpoint, and returns its ids.
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
	var e eventLine
	if err := json.Unmarshal(line, &e); err != nil {
		return "", "", fmt.Errorf("not an event object: %w", err)
	}
	switch {
	case e.ID == nil || !eventIDRE.MatchString(*e.ID):
		return "", "", errors.New(`no 32-hex "id"`)
	case e.EventID != nil && *e.EventID != *e.ID:
		return "", "", errors.New(`"eventID" differs from "id"`)
	case e.ProjectID == nil || *e.ProjectID == "":
		return "", "", errors.New(`no "projectID"`)
	case e.DateCreated == nil:
		return "", "", errors.New(`no "dateCreated"`)
	}
	if _, err := time.Parse(time.RFC3339, *e.DateCreated); err != nil {
		return "", "", fmt.Errorf(`bad "dateCreated": %w`, err)
	}
	return *e.ID, *e.ProjectID, nil
}

// nonEmpty drops projects without events, so that a project the simulator
// knows but that has no event compares equal to one absent from the bucket.
func nonEmpty(m map[string]map[string]bool) map[string]map[string]bool {
	out := make(map[string]map[string]bool, len(m))
	for p, ids := range m {
		if len(ids) > 0 {
			out[p] = ids
		}
	}
	return out
}

func count(m map[string]map[string]bool) int {
	n := 0
	for _, ids := range m {
		n += len(ids)
	}
	return n
}

// setDiff describes how got differs from want per project: missing and
// unexpected ids, with a few examples each. It is empty when they are equal.
func setDiff(want, got map[string]map[string]bool) string {
	var b strings.Builder
	projects := slices.Sorted(maps.Keys(want))
	for p := range got {
		if _, ok := want[p]; !ok {
			projects = append(projects, p)
		}
	}
	for _, p := range projects {
		var missing, extra []string
		for id := range want[p] {
			if !got[p][id] {
				missing = append(missing, id)
			}
		}
		for id := range got[p] {
			if !want[p][id] {
				extra = append(extra, id)
			}
		}
		if len(missing) == 0 && len(extra) == 0 {
			continue
		}
		slices.Sort(missing)
		slices.Sort(extra)
		fmt.Fprintf(&b, "project %s: want %d, got %d: %d missing %v, %d unexpected %v\n",
			p, len(want[p]), len(got[p]), len(missing), sample(missing), len(extra), sample(extra))
	}
	return b.String()
}

func sample(ids []string) []string {
	if len(ids) > 5 {
		return append(slices.Clip(ids[:5]), "…")
	}
	return ids
}
