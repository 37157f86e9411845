package pubsub

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestDecode(t *testing.T) {
	t.Parallel()

	pt := time.Date(2021, 2, 26, 19, 13, 55, 749000000, time.UTC)
	const sub = "projects/myproject/subscriptions/mysubscription"

	cases := []struct {
		name    string
		body    string
		header  http.Header
		limit   int64
		want    *Push
		wantErr error
		wantMsg string
	}{
		{
			name: "wrapped_camel_case",
			body: `{"message":{"attributes":{"k":"v"},"data":"` + b64(`{}`) + `","messageId":"2070443601311540","publishTime":"2021-02-26T19:13:55.749Z"},"subscription":"` + sub + `","deliveryAttempt":3}`,
			want: &Push{
				Message:         Message{ID: "2070443601311540", Data: []byte(`{}`), Attributes: map[string]string{"k": "v"}, PublishTime: pt},
				Subscription:    sub,
				DeliveryAttempt: 3,
				Wrapped:         true,
				Work:            Work{Kind: KindTick},
			},
		},
		{
			name: "wrapped_snake_case",
			body: `{"message":{"data":"` + b64(`{"type":"continue","stream":"events","hop":2}`) + `","message_id":"42","publish_time":"2021-02-26T19:13:55.749Z","ordering_key":"ok"},"subscription":"` + sub + `"}`,
			want: &Push{
				Message:      Message{ID: "42", Data: []byte(`{"type":"continue","stream":"events","hop":2}`), PublishTime: pt, OrderingKey: "ok"},
				Subscription: sub,
				Wrapped:      true,
				Work:         Work{Kind: KindContinue, Stream: "events", Hop: 2},
			},
		},
		{
			name: "wrapped_both_cases_as_the_emulator_sends",
			body: `{"message":{"data":"` + b64(`{"type":"backfill","job_id":"job-1"}`) + `","messageId":"7","message_id":"7","publishTime":"2021-02-26T19:13:55.749Z","publish_time":"2021-02-26T19:13:55.749Z"},"subscription":"` + sub + `"}`,
			want: &Push{
				Message:      Message{ID: "7", Data: []byte(`{"type":"backfill","job_id":"job-1"}`), PublishTime: pt},
				Subscription: sub,
				Wrapped:      true,
				Work:         Work{Kind: KindBackfill, JobID: "job-1"},
			},
		},
		{
			name: "wrapped_no_data_is_a_tick",
			body: `{"message":{"attributes":{"job":"sentry"},"messageId":"8"},"subscription":"` + sub + `","delivery_attempt":1}`,
			want: &Push{
				Message:         Message{ID: "8", Attributes: map[string]string{"job": "sentry"}},
				Subscription:    sub,
				DeliveryAttempt: 1,
				Wrapped:         true,
				Work:            Work{Kind: KindTick},
			},
		},
		{
			name: "unwrapped_with_metadata",
			body: `{"type":"continue","stream":"events"}`,
			header: http.Header{
				HeaderMessageID:                     {"99"},
				HeaderPublishTime:                   {"2021-02-26T19:13:55.749Z"},
				HeaderSubscription:                  {sub},
				http.CanonicalHeaderKey(AttrType):   {"continue"},
				http.CanonicalHeaderKey(AttrStream): {"events"},
				"User-Agent":                        {"APIs-Google"},
			},
			want: &Push{
				Message: Message{
					ID:          "99",
					Data:        []byte(`{"type":"continue","stream":"events"}`),
					Attributes:  map[string]string{AttrType: "continue", AttrStream: "events"},
					PublishTime: pt,
				},
				Subscription: sub,
				Work:         Work{Kind: KindContinue, Stream: "events"},
			},
		},
		{
			name:   "unwrapped_empty_body_is_a_tick",
			header: http.Header{HeaderMessageID: {"100"}},
			want:   &Push{Message: Message{ID: "100"}, Work: Work{Kind: KindTick}},
		},
		{name: "empty_body", body: "", wantErr: ErrMalformed, wantMsg: "empty body"},
		{name: "not_json", body: "hello", wantErr: ErrMalformed, wantMsg: "invalid envelope JSON"},
		{name: "trailing_garbage", body: `{"message":{"messageId":"1"}} x`, wantErr: ErrMalformed, wantMsg: "trailing"},
		{name: "no_message", body: `{"subscription":"` + sub + `"}`, wantErr: ErrMalformed, wantMsg: `no "message"`},
		{name: "missing_message_id", body: `{"message":{"data":"` + b64("{}") + `"}}`, wantErr: ErrMalformed, wantMsg: "missing message id"},
		{name: "conflicting_ids", body: `{"message":{"messageId":"1","message_id":"2"}}`, wantErr: ErrMalformed, wantMsg: "differ"},
		{name: "conflicting_attempts", body: `{"message":{"messageId":"1"},"deliveryAttempt":1,"delivery_attempt":2}`, wantErr: ErrMalformed, wantMsg: "differ"},
		{name: "negative_attempt", body: `{"message":{"messageId":"1"},"deliveryAttempt":-1}`, wantErr: ErrMalformed, wantMsg: "negative"},
		{name: "invalid_base64", body: `{"message":{"messageId":"1","data":"%%%"}}`, wantErr: ErrMalformed, wantMsg: "base64"},
		{name: "bad_publish_time", body: `{"message":{"messageId":"1","publishTime":"yesterday"}}`, wantErr: ErrMalformed, wantMsg: "RFC 3339"},
		{name: "data_not_object", body: `{"message":{"messageId":"1","data":"` + b64(`[1]`) + `"}}`, wantErr: ErrMalformed, wantMsg: "not a JSON object"},
		{name: "data_malformed_json", body: `{"message":{"messageId":"1","data":"` + b64(`{"type":`) + `"}}`, wantErr: ErrMalformed, wantMsg: "not valid JSON"},
		{name: "unknown_type", body: `{"message":{"messageId":"1","data":"` + b64(`{"type":"explode"}`) + `"}}`, wantErr: ErrMalformed, wantMsg: "unknown message type"},
		{name: "control_chars_in_id", body: `{"message":{"messageId":"a\nb"}}`, wantErr: ErrMalformed, wantMsg: "printable"},
		{name: "unwrapped_bad_data", body: `not json`, header: http.Header{HeaderMessageID: {"1"}}, wantErr: ErrMalformed, wantMsg: "not a JSON object"},
		{name: "unwrapped_bad_attempt", header: http.Header{HeaderMessageID: {"1"}, HeaderDeliveryAttempt: {"x"}}, wantErr: ErrMalformed, wantMsg: "not an integer"},
		{name: "too_large", body: `{"message":{"messageId":"1","data":"` + strings.Repeat("A", 200) + `"}}`, limit: 100, wantErr: ErrTooLarge},
		{name: "at_the_limit", body: `{"message":{"messageId":"1"}}`, limit: int64(len(`{"message":{"messageId":"1"}}`)), want: &Push{Message: Message{ID: "1"}, Wrapped: true, Work: Work{Kind: KindTick}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := tc.header
			if h == nil {
				h = http.Header{}
			}
			got, err := Decode(strings.NewReader(tc.body), h, tc.limit)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got error %v, want %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("error %q does not contain %q", err, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("push (-want +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("decoded push does not validate: %v", err)
			}
		})
	}
}

func TestDecode_maxBytesReader(t *testing.T) {
	t.Parallel()

	body := http.MaxBytesReader(nil, ioNopCloser{strings.NewReader(strings.Repeat("x", 100))}, 10)
	_, err := Decode(body, http.Header{}, 1000)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
}

type ioNopCloser struct{ *strings.Reader }

func (ioNopCloser) Close() error { return nil }

func TestParseWork(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name    string
		data    string
		want    Work
		wantMsg string
	}{
		{name: "empty", data: "", want: Work{Kind: KindTick}},
		{name: "whitespace", data: " \n", want: Work{Kind: KindTick}},
		{name: "empty_object", data: "{}", want: Work{Kind: KindTick}},
		{name: "scheduler_identity_is_a_tick", data: `{"job":"sentry-events","v":1}`, want: Work{Kind: KindTick}},
		{name: "explicit_tick", data: `{"type":"tick"}`, want: Work{Kind: KindTick}},
		{name: "continue", data: `{"type":"continue","stream":"events","hop":4,"future":true}`, want: Work{Kind: KindContinue, Stream: "events", Hop: 4}},
		{name: "backfill", data: `{"type":"backfill","job_id":"2026-11-26_abc"}`, want: Work{Kind: KindBackfill, JobID: "2026-11-26_abc"}},
		{name: "backfill_with_stream", data: `{"type":"backfill","job_id":"j1","stream":"issues"}`, want: Work{Kind: KindBackfill, JobID: "j1", Stream: "issues"}},
		{name: "continue_without_stream", data: `{"type":"continue"}`, wantMsg: "needs a stream"},
		{name: "continue_bad_stream", data: `{"type":"continue","stream":"../x"}`, wantMsg: "needs a stream"},
		{name: "continue_stream_not_string", data: `{"type":"continue","stream":5}`, wantMsg: "not valid JSON"},
		{name: "backfill_without_job", data: `{"type":"backfill"}`, wantMsg: "needs a job_id"},
		{name: "backfill_bad_job", data: `{"type":"backfill","job_id":"a b"}`, wantMsg: "needs a job_id"},
		{name: "tick_with_stream", data: `{"stream":"events"}`, wantMsg: "carries no stream"},
		{name: "unknown_type", data: `{"type":"Continue"}`, wantMsg: "unknown message type"},
		{name: "negative_hop", data: `{"type":"continue","stream":"events","hop":-1}`, wantMsg: "out of range"},
		{name: "null", data: `null`, wantMsg: "not a JSON object"},
		{name: "two_objects", data: `{}{}`, wantMsg: "trailing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseWork([]byte(tc.data))
			if tc.wantMsg != "" {
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("got error %v, want ErrMalformed containing %q", err, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("work (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWork_MarshalRoundTrip(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name string
		work Work
		want string
	}{
		{name: "tick", work: Work{Kind: KindTick}, want: `{}`},
		{name: "continue", work: Continue("events", Work{Kind: KindTick}), want: `{"type":"continue","stream":"events","hop":1}`},
		{name: "backfill", work: Work{Kind: KindBackfill, JobID: "j1"}, want: `{"type":"backfill","job_id":"j1"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := tc.work.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if got := string(b); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			back, err := ParseWork(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.work, back); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := (Work{Kind: KindContinue}).Marshal(); err == nil {
		t.Error("Marshal accepted a continuation without a stream")
	}
}

func TestParseTopic(t *testing.T) {
	t.Parallel()

	p, topic, err := ParseTopic("projects/p1/topics/t1")
	if err != nil || p != "p1" || topic != "t1" {
		t.Errorf("got %q %q %v", p, topic, err)
	}
	for _, bad := range []string{"", "t1", "projects/p1/topics/", "projects//topics/t", "projects/p/subscriptions/s"} {
		if _, _, err := ParseTopic(bad); err == nil {
			t.Errorf("ParseTopic(%q) accepted", bad)
		}
	}
}

// FuzzDecode checks that Decode never panics, that whatever it accepts
// validates, and that re-encoding an accepted push as a wrapped envelope
// decodes to the same push.
func FuzzDecode(f *testing.F) {
	seeds := []struct {
		body string
		id   string
	}{
		{`{"message":{"data":"` + b64("{}") + `","messageId":"1","publishTime":"2021-02-26T19:13:55.749Z"},"subscription":"projects/p/subscriptions/s","deliveryAttempt":1}`, ""},
		{`{"message":{"data":"` + b64(`{"type":"continue","stream":"events","hop":3}`) + `","message_id":"2","publish_time":"2021-02-26T19:13:55Z"}}`, ""},
		{`{"message":{"data":"` + b64(`{"type":"backfill","job_id":"j"}`) + `","messageId":"3","attributes":{"a":"b"}}}`, ""},
		{`{"message":{"messageId":"1","message_id":"2"}}`, ""},
		{`{"message":{"messageId":"1","data":"!!"}}`, ""},
		{`{"type":"continue","stream":"events"}`, "42"},
		{``, "43"},
		{`{}`, ""},
		{`null`, ""},
		{`{"message":null}`, ""},
	}
	for _, s := range seeds {
		f.Add([]byte(s.body), s.id)
	}
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		h := http.Header{}
		if id != "" {
			h.Set(HeaderMessageID, id)
		}
		p, err := Decode(bytes.NewReader(body), h, 4096)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted push does not validate: %v", err)
		}
		wrapped, err := p.MarshalWrapped()
		if err != nil {
			t.Fatalf("failed to re-encode: %v", err)
		}
		again, err := Decode(bytes.NewReader(wrapped), http.Header{}, int64(len(wrapped)))
		if err != nil {
			t.Fatalf("re-encoded push %s does not decode: %v", wrapped, err)
		}
		p.Wrapped = true
		if len(p.Message.Attributes) == 0 {
			p.Message.Attributes = nil
		}
		if len(again.Message.Attributes) == 0 {
			again.Message.Attributes = nil
		}
		if diff := cmp.Diff(p, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
