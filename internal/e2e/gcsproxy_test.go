package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// gcsProxy sits between the server and fake-gcs-server (the server's
// STORAGE_EMULATOR_HOST points at it). It forwards everything, except that an
// armed trap holds one upload forever, so that the test can kill the server
// at an exact point of its write sequence.
type gcsProxy struct {
	host string // 127.0.0.1:PORT
	rp   *httputil.ReverseProxy
	hs   *http.Server

	mu   sync.Mutex
	trap *uploadTrap
}

// uploadTrap holds the first upload whose body contains holdMarker, once an
// upload whose body contains afterMarker has been forwarded.
type uploadTrap struct {
	afterMarker []byte
	holdMarker  []byte
	sawAfter    bool
	afterObject string        // name of the last upload containing afterMarker
	hit         chan struct{} // closed when an upload is held
}

func startGCSProxy(t *testing.T, upstreamHost string) *gcsProxy {
	t.Helper()
	upstream := &url.URL{Scheme: "http", Host: upstreamHost}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("failed to listen: %v", err)
	}
	p := &gcsProxy{
		host: ln.Addr().String(),
		rp: &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(upstream) // also sets Host: fake-gcs routes on it
			},
		},
	}
	p.hs = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := p.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("storage proxy failed: %v", err)
		}
	}()
	t.Cleanup(func() { _ = p.hs.Close() })
	return p
}

// arm sets a trap: after an upload containing after, hold the next upload
// containing hold. The returned channel is closed when it is held; the
// returned function then gives the name of the object uploaded before.
func (p *gcsProxy) arm(after, hold string) (held <-chan struct{}, before func() string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	tr := &uploadTrap{afterMarker: []byte(after), holdMarker: []byte(hold), hit: make(chan struct{})}
	p.trap = tr
	return tr.hit, func() string {
		p.mu.Lock()
		defer p.mu.Unlock()
		return tr.afterObject
	}
}

func (p *gcsProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/upload/") && p.armed() {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, fmt.Sprintf("proxy: failed to read body: %v", err), http.StatusBadGateway)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if p.spring(body, r.URL.Query().Get("name")) {
			// Held: never forwarded, never answered. The server is
			// killed meanwhile, which ends the request.
			<-r.Context().Done()
			return
		}
	}
	p.rp.ServeHTTP(w, r)
}

func (p *gcsProxy) armed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.trap != nil
}

// spring reports whether the upload of object name with body must be held
// (and disarms).
func (p *gcsProxy) spring(body []byte, name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	tr := p.trap
	if tr == nil {
		return false
	}
	if tr.sawAfter && bytes.Contains(body, tr.holdMarker) {
		close(tr.hit)
		p.trap = nil
		return true
	}
	if bytes.Contains(body, tr.afterMarker) {
		tr.sawAfter = true
		tr.afterObject = name
	}
	return false
}
