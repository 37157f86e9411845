package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFakeSleepAdvances(t *testing.T) {
	t.Parallel()

	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := NewFake(t0)
	if err := f.Sleep(t.Context(), 90*time.Second); err != nil {
		t.Fatalf("Sleep: %v", err)
	}
	if got, want := f.Now(), t0.Add(90*time.Second); !got.Equal(want) {
		t.Errorf("Now() = %v, want %v", got, want)
	}
	f.Advance(time.Minute)
	if got, want := f.Slept(), 90*time.Second; got != want {
		t.Errorf("Slept() = %v, want %v", got, want)
	}
	if got, want := f.Now(), t0.Add(150*time.Second); !got.Equal(want) {
		t.Errorf("Now() after Advance = %v, want %v", got, want)
	}
}

func TestSleepHonoursCancelledContext(t *testing.T) {
	t.Parallel()

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, c := range []Clock{Real{}, NewFake(time.Unix(0, 0))} {
		if err := c.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
			t.Errorf("%T.Sleep(cancelled) = %v, want context.Canceled", c, err)
		}
	}
}

func TestRealSleepShort(t *testing.T) {
	t.Parallel()

	if err := (Real{}).Sleep(t.Context(), time.Millisecond); err != nil {
		t.Errorf("Real.Sleep: %v", err)
	}
}
