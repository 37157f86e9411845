package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/logging"
)

// shutdownTimeout bounds graceful shutdown: Cloud Run sends SIGKILL 10 s
// after SIGTERM.
const shutdownTimeout = 9 * time.Second

// maxHeaderBytes bounds a request's headers where they arrive: a push or an
// operator's request carries a bearer token and a few short headers, and the
// unauthenticated caller's headers reach the request log.
const maxHeaderBytes = 64 << 10

// httpTimeouts are the http.Server's timeouts.
type httpTimeouts struct {
	ReadHeader time.Duration
	Read       time.Duration
	Write      time.Duration
	Idle       time.Duration
}

// timeoutsFor returns timeouts for a server whose longest request (a push)
// runs for at most run: the write timeout must outlast it, or the answer to
// a long run would be cut off and Pub/Sub would redeliver work already done.
func timeoutsFor(run time.Duration) httpTimeouts {
	return httpTimeouts{
		ReadHeader: 10 * time.Second,
		Read:       30 * time.Second,
		Write:      run + time.Minute,
		Idle:       2 * time.Minute,
	}
}

// serveHTTP serves h on ln (already listening) until ctx is done, then calls
// onShutdown (which drains in-flight runs) and shuts the server down
// gracefully within shutdownTimeout: the listener closes at once, in-flight
// requests finish (a drained run commits, answers, publishes its
// continuation). http.ErrServerClosed is success.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, t httpTimeouts, onShutdown func()) error {
	logger := logging.FromContext(ctx)
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("failed to serve: %w", err)
	case <-ctx.Done():
	}

	logger.InfoContext(ctx, "shutting down", "timeout", shutdownTimeout.String())
	if onShutdown != nil {
		onShutdown()
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	shutdownErr := hs.Shutdown(sctx)
	if shutdownErr != nil {
		_ = hs.Close()
	}
	serveErr := <-errc
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	if shutdownErr != nil {
		return fmt.Errorf("failed to shut down within %s: %w", shutdownTimeout, shutdownErr)
	}
	if serveErr != nil {
		return fmt.Errorf("failed to serve: %w", serveErr)
	}
	logger.InfoContext(ctx, "server stopped")
	return nil
}
