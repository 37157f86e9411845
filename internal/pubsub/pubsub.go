// Package pubsub decodes and validates Pub/Sub push deliveries (the wrapped
// JSON envelope and the unwrapped form with x-goog-pubsub-* headers), parses
// the product's message data (scheduled ticks, continuations, backfill work),
// and publishes continuation messages to the trigger topic.
package pubsub

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// DefaultMaxBodyBytes bounds a push request body. The product's own messages
// are a few hundred bytes; 1 MiB leaves ample room.
const DefaultMaxBodyBytes = 1 << 20

// Errors returned by Decode. Both mean the delivery is poison: answer 400 (or
// 413 for ErrTooLarge) so Pub/Sub retries it and finally dead-letters it.
var (
	ErrMalformed = errors.New("malformed push request")
	ErrTooLarge  = errors.New("push request body too large")
)

// Headers of the unwrapped form (push subscription with no_wrapper and
// write_metadata).
const (
	HeaderMessageID       = "X-Goog-Pubsub-Message-Id"
	HeaderPublishTime     = "X-Goog-Pubsub-Publish-Time"
	HeaderSubscription    = "X-Goog-Pubsub-Subscription-Name"
	HeaderOrderingKey     = "X-Goog-Pubsub-Ordering-Key"
	HeaderDeliveryAttempt = "X-Goog-Pubsub-Delivery-Attempt"
)

// Attribute keys the product sets on the messages it publishes. In the
// unwrapped form Pub/Sub writes attributes as plain "<key>: <value>" headers,
// indistinguishable from other headers, so Decode keeps only these keys there.
// They are hyphenated (not snake_case) because some proxies drop header names
// with underscores.
const (
	AttrType   = "sentry-gcs-type"
	AttrStream = "sentry-gcs-stream"
	AttrJobID  = "sentry-gcs-job-id"
	AttrHop    = "sentry-gcs-hop"
)

// KnownAttributes are the attribute keys recovered from headers in the
// unwrapped form.
var KnownAttributes = []string{AttrType, AttrStream, AttrJobID, AttrHop}

// maxIDLen bounds message ids and subscription names (Pub/Sub's are far
// shorter).
const maxIDLen = 512

// Message is one Pub/Sub message as delivered.
type Message struct {
	ID          string
	Data        []byte
	Attributes  map[string]string
	PublishTime time.Time
	OrderingKey string
}

// Push is one decoded push delivery.
type Push struct {
	Message         Message
	Subscription    string
	DeliveryAttempt int  // 0 when unknown (no dead-letter policy, or the emulator)
	Wrapped         bool // false for the unwrapped (no_wrapper) form
	Work            Work // the parsed message data
}

// wireMessage is the JSON of the wrapped envelope's message. Pub/Sub writes
// both camelCase and snake_case names; either is accepted.
type wireMessage struct {
	Data           *string           `json:"data"`
	Attributes     map[string]string `json:"attributes"`
	MessageID      string            `json:"messageId"`
	MessageIDSnake string            `json:"message_id"`
	PublishTime    string            `json:"publishTime"`
	PublishTimeSnk string            `json:"publish_time"`
	OrderingKey    string            `json:"orderingKey"`
	OrderingKeySnk string            `json:"ordering_key"`
}

type wireEnvelope struct {
	Message              *wireMessage `json:"message"`
	Subscription         string       `json:"subscription"`
	DeliveryAttempt      *int         `json:"deliveryAttempt"`
	DeliveryAttemptSnake *int         `json:"delivery_attempt"`
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Decode reads a push request body (at most limit bytes; limit <= 0 means
// DefaultMaxBodyBytes) and its headers. A request carrying the
// x-goog-pubsub-message-id header is the unwrapped form: the body is the
// message data. Anything else must be the wrapped JSON envelope. The message
// data is parsed into Push.Work. Errors wrap ErrMalformed or ErrTooLarge.
func Decode(body io.Reader, header http.Header, limit int64) (*Push, error) {
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	raw, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, mbe.Limit)
		}
		return nil, fmt.Errorf("failed to read push request body: %w", err)
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}

	var p *Push
	if header.Get(HeaderMessageID) != "" {
		p, err = decodeUnwrapped(raw, header)
	} else {
		p, err = decodeWrapped(raw)
	}
	if err != nil {
		return nil, err
	}
	if err := p.validateMetadata(); err != nil {
		return nil, err
	}
	if p.Work, err = ParseWork(p.Message.Data); err != nil {
		return nil, err
	}
	return p, nil
}

func decodeWrapped(raw []byte) (*Push, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, malformed("empty body and no %s header", HeaderMessageID)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var env wireEnvelope
	if err := dec.Decode(&env); err != nil {
		return nil, malformed("invalid envelope JSON: %v", err)
	}
	if dec.More() {
		return nil, malformed("trailing data after the envelope")
	}
	if env.Message == nil {
		return nil, malformed("no \"message\" in the envelope (and no %s header for the unwrapped form)", HeaderMessageID)
	}
	m := env.Message
	id, err := either("messageId", m.MessageID, m.MessageIDSnake)
	if err != nil {
		return nil, err
	}
	pt, err := either("publishTime", m.PublishTime, m.PublishTimeSnk)
	if err != nil {
		return nil, err
	}
	ok, err := either("orderingKey", m.OrderingKey, m.OrderingKeySnk)
	if err != nil {
		return nil, err
	}
	p := &Push{
		Subscription: env.Subscription,
		Wrapped:      true,
		Message:      Message{ID: id, Attributes: m.Attributes, OrderingKey: ok},
	}
	switch {
	case env.DeliveryAttempt != nil && env.DeliveryAttemptSnake != nil && *env.DeliveryAttempt != *env.DeliveryAttemptSnake:
		return nil, malformed("deliveryAttempt and delivery_attempt differ")
	case env.DeliveryAttempt != nil:
		p.DeliveryAttempt = *env.DeliveryAttempt
	case env.DeliveryAttemptSnake != nil:
		p.DeliveryAttempt = *env.DeliveryAttemptSnake
	}
	if m.Data != nil && *m.Data != "" {
		data, err := base64.StdEncoding.DecodeString(*m.Data)
		if err != nil {
			return nil, malformed("message data is not valid base64: %v", err)
		}
		p.Message.Data = data
	}
	if p.Message.PublishTime, err = parseTime(pt); err != nil {
		return nil, err
	}
	return p, nil
}

// either returns the camelCase value, or the snake_case one, refusing two
// different non-empty values.
func either(name, camel, snake string) (string, error) {
	if camel != "" && snake != "" && camel != snake {
		return "", malformed("%s and its snake_case twin differ", name)
	}
	if camel != "" {
		return camel, nil
	}
	return snake, nil
}

func decodeUnwrapped(raw []byte, h http.Header) (*Push, error) {
	p := &Push{
		Subscription: h.Get(HeaderSubscription),
		Message: Message{
			ID:          h.Get(HeaderMessageID),
			OrderingKey: h.Get(HeaderOrderingKey),
		},
	}
	if len(raw) > 0 {
		p.Message.Data = raw
	}
	for _, k := range KnownAttributes {
		if vs, ok := h[http.CanonicalHeaderKey(k)]; ok && len(vs) > 0 {
			if p.Message.Attributes == nil {
				p.Message.Attributes = make(map[string]string)
			}
			p.Message.Attributes[k] = vs[0]
		}
	}
	var err error
	if p.Message.PublishTime, err = parseTime(h.Get(HeaderPublishTime)); err != nil {
		return nil, err
	}
	if s := h.Get(HeaderDeliveryAttempt); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, malformed("%s is not an integer", HeaderDeliveryAttempt)
		}
		p.DeliveryAttempt = n
	}
	return p, nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, malformed("publish time %q is not RFC 3339", logging.Clip(s, 64))
	}
	return t.UTC(), nil
}

// validateMetadata checks what Pub/Sub always sets.
func (p *Push) validateMetadata() error {
	switch {
	case p.Message.ID == "":
		return malformed("missing message id")
	case !printable(p.Message.ID, maxIDLen):
		return malformed("message id is not a short printable string")
	case !printable(p.Subscription, maxIDLen):
		return malformed("subscription is not a short printable string")
	case p.DeliveryAttempt < 0:
		return malformed("negative delivery attempt %d", p.DeliveryAttempt)
	}
	return nil
}

// Validate checks a decoded (or hand-built) Push as Decode does.
func (p *Push) Validate() error {
	if err := p.validateMetadata(); err != nil {
		return err
	}
	w, err := ParseWork(p.Message.Data)
	if err != nil {
		return err
	}
	if w != p.Work {
		return malformed("work %+v does not match the message data", p.Work)
	}
	return nil
}

// MarshalWrapped encodes p as a wrapped push envelope, with both camelCase and
// snake_case names as Pub/Sub writes them. Tests and the end-to-end harness
// use it to deliver messages by hand.
func (p *Push) MarshalWrapped() ([]byte, error) {
	type msg struct {
		Data           string            `json:"data,omitempty"`
		Attributes     map[string]string `json:"attributes,omitempty"`
		MessageID      string            `json:"messageId"`
		MessageIDSnake string            `json:"message_id"`
		PublishTime    string            `json:"publishTime,omitempty"`
		PublishTimeSnk string            `json:"publish_time,omitempty"`
		OrderingKey    string            `json:"orderingKey,omitempty"`
	}
	type env struct {
		Message         msg    `json:"message"`
		Subscription    string `json:"subscription"`
		DeliveryAttempt int    `json:"deliveryAttempt,omitempty"`
	}
	e := env{
		Message: msg{
			Data:        base64.StdEncoding.EncodeToString(p.Message.Data),
			Attributes:  p.Message.Attributes,
			MessageID:   p.Message.ID,
			OrderingKey: p.Message.OrderingKey,
		},
		Subscription:    p.Subscription,
		DeliveryAttempt: p.DeliveryAttempt,
	}
	e.Message.MessageIDSnake = e.Message.MessageID
	if !p.Message.PublishTime.IsZero() {
		e.Message.PublishTime = p.Message.PublishTime.UTC().Format(time.RFC3339Nano)
		e.Message.PublishTimeSnk = e.Message.PublishTime
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("failed to encode push envelope: %w", err)
	}
	return b, nil
}

func printable(s string, maxLen int) bool {
	if len(s) > maxLen {
		return false
	}
	for _, r := range s {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// AttributesFor returns the attributes the product tags its messages with.
func AttributesFor(w Work) map[string]string {
	a := map[string]string{AttrType: string(w.Kind)}
	if w.Stream != "" {
		a[AttrStream] = w.Stream
	}
	if w.JobID != "" {
		a[AttrJobID] = w.JobID
	}
	if w.Hop > 0 {
		a[AttrHop] = strconv.Itoa(w.Hop)
	}
	return a
}

// trimmedEmpty reports whether data is empty or only whitespace.
func trimmedEmpty(data []byte) bool {
	return len(strings.TrimSpace(string(data))) == 0
}
