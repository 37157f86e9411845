package pubsub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// Kind is what a message asks the service to do.
type Kind string

// Message kinds.
const (
	// KindTick is a scheduled tick: collect every stream. Cloud Scheduler
	// sends empty data or "{}"; a JSON object without "type" is a tick too,
	// so a scheduler job may carry its own identity in the data.
	KindTick Kind = "tick"
	// KindContinue continues a stream whose previous run ran out of budget.
	KindContinue Kind = "continue"
	// KindBackfill works on a durable backfill job.
	KindBackfill Kind = "backfill"
)

// DefaultStream is the stream a continuation names when the message that
// started the chain named none (a tick collects every stream).
const DefaultStream = "events"

// Work is the parsed message data.
type Work struct {
	Kind Kind
	// Stream is the stream to continue ("events", later "issues", "audit");
	// set for KindContinue.
	Stream string
	// JobID is the backfill job; set for KindBackfill.
	JobID string
	// Hop counts continuations in a chain (1 for the first); informational,
	// for logs and loop detection.
	Hop int
}

type wireWork struct {
	Type   *string `json:"type"`
	Stream *string `json:"stream"`
	JobID  *string `json:"job_id"`
	Hop    *int    `json:"hop"`
}

var (
	streamRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	jobIDRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)
)

// MaxHop bounds Work.Hop: a chain that long is a loop, not a backlog.
const MaxHop = 1_000_000

// ParseWork parses message data. Empty data, whitespace, "{}" and an object
// without "type" are ticks; {"type":"continue","stream":"events","hop":N} is a
// continuation; {"type":"backfill","job_id":"…"} is backfill work. Unknown
// fields are ignored (forward compatibility); an unknown type, a missing or
// invalid stream or job id, or data that is not one JSON object is
// ErrMalformed.
func ParseWork(data []byte) (Work, error) {
	if trimmedEmpty(data) {
		return Work{Kind: KindTick}, nil
	}
	trimmed := bytes.TrimSpace(data)
	if trimmed[0] != '{' {
		return Work{}, malformed("message data is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var w wireWork
	if err := dec.Decode(&w); err != nil {
		return Work{}, malformed("message data is not valid JSON: %v", err)
	}
	if dec.More() {
		return Work{}, malformed("trailing data after the message JSON")
	}

	var out Work
	kind := KindTick
	if w.Type != nil {
		kind = Kind(*w.Type)
	}
	out.Kind = kind
	switch kind {
	case KindTick:
		if w.Stream != nil || w.JobID != nil {
			return Work{}, malformed("a tick carries no stream or job_id")
		}
	case KindContinue:
		if w.Stream == nil || !streamRE.MatchString(*w.Stream) {
			return Work{}, malformed("a continue message needs a stream name (lowercase letters, digits, '_')")
		}
		if w.JobID != nil {
			return Work{}, malformed("a continue message carries no job_id")
		}
		out.Stream = *w.Stream
	case KindBackfill:
		if w.JobID == nil || !jobIDRE.MatchString(*w.JobID) {
			return Work{}, malformed("a backfill message needs a job_id (letters, digits, '-', '_'; at most 128)")
		}
		if w.Stream != nil {
			if !streamRE.MatchString(*w.Stream) {
				return Work{}, malformed("invalid stream name in backfill message")
			}
			out.Stream = *w.Stream
		}
		out.JobID = *w.JobID
	default:
		return Work{}, malformed("unknown message type %q", logging.Clip(string(kind), 32))
	}
	if w.Hop != nil {
		if *w.Hop < 0 || *w.Hop > MaxHop {
			return Work{}, malformed("hop %d out of range", *w.Hop)
		}
		out.Hop = *w.Hop
	}
	return out, nil
}

// Marshal encodes w as message data that ParseWork reads back unchanged. A
// tick is "{}".
func (w Work) Marshal() ([]byte, error) {
	var v any
	switch w.Kind {
	case KindTick, "":
		if w.Hop == 0 {
			return []byte("{}"), nil
		}
		v = struct {
			Type Kind `json:"type"`
			Hop  int  `json:"hop,omitempty"`
		}{KindTick, w.Hop}
	case KindContinue:
		v = struct {
			Type   Kind   `json:"type"`
			Stream string `json:"stream"`
			Hop    int    `json:"hop,omitempty"`
		}{w.Kind, w.Stream, w.Hop}
	case KindBackfill:
		v = struct {
			Type   Kind   `json:"type"`
			JobID  string `json:"job_id"`
			Stream string `json:"stream,omitempty"`
			Hop    int    `json:"hop,omitempty"`
		}{w.Kind, w.JobID, w.Stream, w.Hop}
	default:
		return nil, fmt.Errorf("unknown message kind %q", w.Kind)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("failed to encode message data: %w", err)
	}
	if _, err := ParseWork(b); err != nil {
		return nil, fmt.Errorf("failed to encode message data: %w", err)
	}
	return b, nil
}

// Continue returns the continuation of w for stream: hop is one more than
// w's.
func Continue(stream string, prev Work) Work {
	return Work{Kind: KindContinue, Stream: stream, Hop: prev.Hop + 1}
}
