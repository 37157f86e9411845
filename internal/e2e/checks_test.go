package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/storage"

	"github.com/secops-collectors/sentry-gcs/internal/sentrysim"
)

// waitAllVisible waits until the simulator shows all n events.
func waitAllVisible(ctx context.Context, t *testing.T, sim *sentrysim.Running, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for sim.VisibleCount() < n {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("only %d of %d events visible after %s", sim.VisibleCount(), n, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitExactlyOnce polls the bucket until it holds exactly the ground truth.
// Malformed lines and duplicates fail at once: they never heal.
func waitExactlyOnce(ctx context.Context, t *testing.T, gcs *fakeGCS, sim *sentrysim.Running, timeout time.Duration) *sentrysim.Report {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rep := readExactlyOnce(ctx, t, gcs, sim)
		if rep.OK() {
			return rep
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("the bucket does not match the simulator's ground truth after %s: %s", timeout, rep)
		}
		time.Sleep(time.Second)
	}
}

// checkExactlyOnce asserts once that the bucket holds exactly the ground truth.
func checkExactlyOnce(ctx context.Context, t *testing.T, gcs *fakeGCS, sim *sentrysim.Running) {
	t.Helper()
	if rep := readExactlyOnce(ctx, t, gcs, sim); !rep.OK() {
		t.Fatalf("the bucket no longer matches the ground truth: %s", rep)
	}
}

// readExactlyOnce reads the bucket and fails on malformed lines or duplicates.
func readExactlyOnce(ctx context.Context, t *testing.T, gcs *fakeGCS, sim *sentrysim.Running) *sentrysim.Report {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rep, err := readBucket(rctx, gcs.client, bucketName, dataPrefix, sim.GroundTruth())
	if err != nil {
		t.Fatalf("failed to read the bucket: %v", err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("%d malformed data objects or lines, e.g.:\n%s", len(rep.Problems), sample(rep.Problems))
	}
	if len(rep.Duplicated) > 0 {
		t.Fatalf("%d events stored more than once, e.g.:\n%s", len(rep.Duplicated), sample(rep.Duplicated))
	}
	return rep
}

// readLease reads the events lease document as generic JSON, and its
// generation (nil if there is none).
func readLease(ctx context.Context, t *testing.T, client *storage.Client) (map[string]any, int64) {
	t.Helper()
	obj := client.Bucket(bucketName).Object(leaseObject)
	attrs, err := obj.Attrs(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, 0
	}
	if err != nil {
		t.Fatalf("failed to read the lease: %v", err)
	}
	r, err := obj.Generation(attrs.Generation).NewReader(ctx)
	if err != nil {
		t.Fatalf("failed to read the lease: %v", err)
	}
	var doc map[string]any
	err = json.NewDecoder(r).Decode(&doc)
	_ = r.Close()
	if err != nil {
		t.Fatalf("failed to decode the lease %s: %v", leaseObject, err)
	}
	return doc, attrs.Generation
}

// leaseHolder describes the lease if it is held: an owner, not released,
// and an expiry in the future. It knows the field names of both lease
// formats the collector has used ("expiry"; "expires_at" and
// "released_at"), and describes an unknown format rather than judging it.
func leaseHolder(ctx context.Context, t *testing.T, client *storage.Client) (desc string, held bool) {
	t.Helper()
	doc, _ := readLease(ctx, t, client)
	if doc == nil {
		return "none", false
	}
	owner, _ := doc["owner"].(string)
	if owner == "" || doc["released_at"] != nil {
		return fmt.Sprintf("released: %v", doc), false
	}
	for _, f := range []string{"expires_at", "expiry"} {
		s, ok := doc[f].(string)
		if !ok {
			continue
		}
		exp, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			break
		}
		if !time.Now().Before(exp) {
			return fmt.Sprintf("expired: %v", doc), false
		}
		return fmt.Sprintf("owner %s, expiring in %s", owner, time.Until(exp).Round(time.Second)), true
	}
	return fmt.Sprintf("unknown format: %v", doc), true
}

// deleteLease deletes the events lease left by a dead run, which frees it
// as its expiry would, whatever the document's format. The delete is
// conditional on the generation read, so a lease taken meanwhile survives.
func deleteLease(ctx context.Context, t *testing.T, client *storage.Client) {
	t.Helper()
	doc, gen := readLease(ctx, t, client)
	if doc == nil {
		return
	}
	err := client.Bucket(bucketName).Object(leaseObject).If(storage.Conditions{GenerationMatch: gen}).Delete(ctx)
	if err != nil {
		t.Fatalf("failed to delete the dead run's lease: %v", err)
	}
}

// logLine is the part of a server log line the test reads.
type logLine struct {
	Message   string `json:"message"`
	Outcome   string `json:"outcome"`
	MsgID     string `json:"message_id"`
	RequestID string `json:"request_id"`
	Request   *struct {
		Path string `json:"path"`
	} `json:"request"`
	Response *struct {
		Status int `json:"status"`
	} `json:"response"`
}

// pushOutcomes counts the outcomes of handled pushes in the server's logs.
func pushOutcomes(t *testing.T, logs []byte) map[string]int {
	t.Helper()
	out := make(map[string]int)
	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		if l.Message == "push handled" {
			out[l.Outcome]++
		}
	}
	return out
}

// pushesInProgress returns the message ids of the pushes received but not
// answered in a server log (a kill interrupted them).
func pushesInProgress(t *testing.T, logs []byte) []string {
	t.Helper()
	open := make(map[string]string) // request id → message id
	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.RequestID == "" {
			continue
		}
		switch {
		case l.Message == "push received" && l.MsgID != "":
			open[l.RequestID] = l.MsgID
		case l.Response != nil:
			delete(open, l.RequestID)
		}
	}
	return slices.Sorted(maps.Values(open))
}

// pushesReceived counts the deliveries of each message id in the logs.
func pushesReceived(t *testing.T, logs []byte) map[string]int {
	t.Helper()
	out := make(map[string]int)
	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Message == "push received" && l.MsgID != "" {
			out[l.MsgID]++
		}
	}
	return out
}

// pushStatuses counts the HTTP statuses of the answers to pushes in the
// server's request logs.
func pushStatuses(t *testing.T, logs []byte) map[int]int {
	t.Helper()
	out := make(map[int]int)
	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Request == nil || l.Response == nil {
			continue
		}
		if l.Request.Path == "/pubsub/push" {
			out[l.Response.Status]++
		}
	}
	return out
}

// objectsRecovered sums the objects_recovered of the runs' summaries: data
// objects found already written (by a run that died before committing its
// checkpoint) and taken over rather than written again.
func objectsRecovered(t *testing.T, logs []byte) int {
	t.Helper()
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct {
			Message string `json:"message"`
			Summary *struct {
				ObjectsRecovered int `json:"objects_recovered"`
			} `json:"summary"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Message != "run summary" || l.Summary == nil {
			continue
		}
		n += l.Summary.ObjectsRecovered
	}
	return n
}
