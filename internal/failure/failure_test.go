package failure

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
)

// selfClassified stands for an error type that knows its kind (as the Sentry
// client's API errors do).
type selfClassified struct{ kind Kind }

func (e *selfClassified) Error() string     { return "api error" }
func (e *selfClassified) FailureKind() Kind { return e.kind }

func TestClassify(t *testing.T) {
	t.Parallel()

	dnsErr := &net.DNSError{Err: "no such host", Name: "sentry.example", IsNotFound: true}
	cases := []struct {
		name string
		err  error
		want Kind
	}{
		{name: "nil", err: nil, want: KindNone},
		{name: "plain", err: errors.New("boom"), want: KindUnexpected},
		{name: "config_sentinel", err: fmt.Errorf("%w: SENTRY_ORG is required", ErrConfig), want: KindConfig},
		{name: "transient_mark", err: Transient(errors.New("503")), want: KindTransient},
		{name: "permanent_mark", err: Permanent(errors.New("404")), want: KindConfig},
		{name: "wrapped_mark", err: fmt.Errorf("failed to read: %w", Transient(errors.New("503"))), want: KindTransient},
		{name: "self_classified", err: fmt.Errorf("x: %w", &selfClassified{kind: KindConfig}), want: KindConfig},
		{name: "outermost_mark_wins", err: Transient(fmt.Errorf("failed to commit after %w", &selfClassified{kind: KindConfig})), want: KindTransient},
		{name: "mark_beats_sentinel", err: Transient(fmt.Errorf("%w: odd", ErrConfig)), want: KindTransient},
		{name: "deadline", err: fmt.Errorf("failed to call: %w", context.DeadlineExceeded), want: KindTransient},
		{name: "canceled", err: context.Canceled, want: KindTransient},
		{name: "dns_failure", err: fmt.Errorf("failed to call sentry: %w", dnsErr), want: KindTransient},
		{name: "connection_refused", err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, want: KindTransient},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestMarksKeepTextAndNil(t *testing.T) {
	t.Parallel()

	if Transient(nil) != nil || Permanent(nil) != nil {
		t.Error("marking nil must stay nil")
	}
	base := errors.New("sentry: 503")
	if got := Transient(base).Error(); got != base.Error() {
		t.Errorf("Transient changed the text: %q", got)
	}
	if !errors.Is(Permanent(base), base) {
		t.Error("Permanent does not unwrap to the marked error")
	}
}
