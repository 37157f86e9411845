package pubsub

import (
	"context"
	"fmt"
	"regexp"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
)

var topicNameRE = regexp.MustCompile(`^projects/([^/\s]+)/topics/([^/\s]+)$`)

// ParseTopic splits a full topic name "projects/P/topics/T".
func ParseTopic(name string) (project, topic string, err error) {
	m := topicNameRE.FindStringSubmatch(name)
	if m == nil {
		return "", "", fmt.Errorf("topic %q is not of the form projects/PROJECT/topics/TOPIC", name)
	}
	return m[1], m[2], nil
}

// Publisher publishes the product's messages (continuations, backfill work)
// to the trigger topic, without ordering keys, each tagged with attributes
// (AttributesFor). It honours PUBSUB_EMULATOR_HOST through the client library.
type Publisher struct {
	client    *gpubsub.Client
	publisher *gpubsub.Publisher
	topic     string
}

// NewPublisher connects to Pub/Sub for topic ("projects/P/topics/T"). opts are
// passed to the client (tests pass an endpoint and insecure credentials).
func NewPublisher(ctx context.Context, topic string, opts ...option.ClientOption) (*Publisher, error) {
	project, _, err := ParseTopic(topic)
	if err != nil {
		return nil, err
	}
	client, err := gpubsub.NewClient(ctx, project, opts...)
	if err != nil {
		return nil, fmt.Errorf("failed to create pubsub client: %w", err)
	}
	p := client.Publisher(topic)
	// One message per request, sent at once: a continuation is published
	// just before the push request answers, and nothing is worth batching.
	p.PublishSettings.CountThreshold = 1
	p.PublishSettings.DelayThreshold = time.Millisecond
	p.PublishSettings.Timeout = 30 * time.Second
	return &Publisher{client: client, publisher: p, topic: topic}, nil
}

// Topic returns the full topic name.
func (p *Publisher) Topic() string { return p.topic }

// Publish publishes w and waits for the server's message id, or for ctx.
func (p *Publisher) Publish(ctx context.Context, w Work) (string, error) {
	data, err := w.Marshal()
	if err != nil {
		return "", err
	}
	res := p.publisher.Publish(ctx, &gpubsub.Message{Data: data, Attributes: AttributesFor(w)})
	id, err := res.Get(ctx)
	if err != nil {
		return "", fmt.Errorf("failed to publish %s message to %s: %w", w.Kind, p.topic, err)
	}
	return id, nil
}

// Close flushes pending messages and releases the client.
func (p *Publisher) Close() error {
	p.publisher.Stop()
	if err := p.client.Close(); err != nil {
		return fmt.Errorf("failed to close pubsub client: %w", err)
	}
	return nil
}
