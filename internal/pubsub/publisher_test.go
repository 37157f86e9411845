package pubsub

import (
	"bytes"
	"net/http"
	"testing"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestPublisher_pstest publishes through the real client library to the
// in-memory Pub/Sub server, then delivers what the server stored as a wrapped
// push envelope and decodes it back.
func TestPublisher_pstest(t *testing.T) {
	t.Parallel()

	srv := pstest.NewServer()
	t.Cleanup(func() { _ = srv.Close() })
	const topic = "projects/p1/topics/sentry-gcs-trigger"
	if _, err := srv.GServer.CreateTopic(t.Context(), &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}

	pub, err := NewPublisher(t.Context(), topic,
		option.WithEndpoint(srv.Addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pub.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})

	work := Continue("events", Work{Kind: KindContinue, Stream: "events", Hop: 2})
	id, err := pub.Publish(t.Context(), work)
	if err != nil {
		t.Fatal(err)
	}
	if id == "" {
		t.Fatal("empty message id")
	}

	msgs := srv.Messages()
	if got, want := len(msgs), 1; got != want {
		t.Fatalf("got %d messages, want %d", got, want)
	}
	m := msgs[0]
	if got, want := m.ID, id; got != want {
		t.Errorf("message id: got %q, want %q", got, want)
	}
	if m.OrderingKey != "" {
		t.Errorf("ordering key %q set, want none", m.OrderingKey)
	}
	wantAttrs := map[string]string{AttrType: "continue", AttrStream: "events", AttrHop: "3"}
	if diff := cmp.Diff(wantAttrs, m.Attributes); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}

	// Deliver it as Pub/Sub would, wrapped.
	envelope, err := (&Push{
		Message:      Message{ID: m.ID, Data: m.Data, Attributes: m.Attributes, PublishTime: m.PublishTime},
		Subscription: "projects/p1/subscriptions/push",
	}).MarshalWrapped()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(bytes.NewReader(envelope), http.Header{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(work, got.Work); diff != "" {
		t.Errorf("delivered work (-want +got):\n%s", diff)
	}
}

func TestNewPublisher_badTopic(t *testing.T) {
	t.Parallel()

	if _, err := NewPublisher(t.Context(), "sentry-gcs-trigger"); err == nil {
		t.Fatal("NewPublisher accepted a short topic name")
	}
}
