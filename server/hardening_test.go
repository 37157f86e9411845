package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/secops-collectors/sentry-gcs/internal/auth/authtest"
)

// TestHardening_es256TokenRefused sends an ES256 token with a short
// signature, which made idtoken's ES256 check panic (a 500 with a stack
// trace per request, before authentication): it must be a plain 401.
func TestHardening_es256TokenRefused(t *testing.T) {
	t.Parallel()

	env := newTestEnv(t, nil)
	claims := authtest.PushClaims(testAudience, testPushSA)
	for _, sig := range [][]byte{nil, {1, 2, 3}, []byte("garbage-signature")} {
		tok := authtest.Forge(t, map[string]string{"alg": "ES256", "typ": "JWT", "kid": authtest.ESKeyID}, claims, sig)
		rec := env.do(t, http.MethodPost, pathPush, wrapped("m-es256", "{}", 0), http.Header{
			"Authorization": {"Bearer " + tok},
			"Content-Type":  {"application/json"},
		})
		if got, want := rec.Code, http.StatusUnauthorized; got != want {
			t.Errorf("signature %q: status got %d, want %d; body %s", sig, got, want, rec.Body.String())
		}
	}
	if logs := env.logs.String(); strings.Contains(logs, "panic") || strings.Contains(logs, `"severity":"ERROR"`) {
		t.Errorf("an ES256 token was logged as an error or a panic:\n%s", logs)
	}
	if n := env.collector.Calls(); n != 0 {
		t.Errorf("collector ran %d times", n)
	}
}
