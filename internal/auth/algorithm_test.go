package auth_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/secops-collectors/sentry-gcs/internal/auth"
	"github.com/secops-collectors/sentry-gcs/internal/auth/authtest"
)

// TestVerifier_onlyRS256 checks that a token signed with anything but RS256
// is refused before the validator sees it. idtoken's ES256 check indexes the
// signature without checking its length, so an ES256 token with a short
// signature (and a public audience, and an expiry in the future) made it
// panic on every request.
func TestVerifier_onlyRS256(t *testing.T) {
	t.Parallel()

	signer := authtest.NewSigner(t)
	verifier, err := auth.NewVerifier(signer.Validator(t), audience, []string{pushSA})
	if err != nil {
		t.Fatal(err)
	}
	claims := authtest.PushClaims(audience, pushSA)
	forge := func(header map[string]string, sig []byte) string {
		return "Bearer " + authtest.Forge(t, header, claims, sig)
	}
	payload := strings.Split(signer.Token(t, claims), ".")[1]
	cases := []struct {
		name    string
		header  string
		wantMsg string
	}{
		{name: "es256_short_signature", header: forge(map[string]string{"alg": "ES256", "typ": "JWT", "kid": authtest.ESKeyID}, []byte{1, 2, 3}), wantMsg: `"ES256"`},
		{name: "es256_empty_signature", header: forge(map[string]string{"alg": "ES256", "kid": authtest.ESKeyID}, nil), wantMsg: `"ES256"`},
		{name: "es256_garbage_signature", header: forge(map[string]string{"alg": "ES256", "kid": authtest.ESKeyID}, []byte(strings.Repeat("garbage", 5))), wantMsg: `"ES256"`},
		{name: "alg_none", header: forge(map[string]string{"alg": "none"}, nil), wantMsg: `"none"`},
		{name: "hs256", header: forge(map[string]string{"alg": "HS256", "kid": signer.KeyID}, []byte("mac")), wantMsg: `"HS256"`},
		{name: "rs256_lowercase", header: forge(map[string]string{"alg": "rs256", "kid": signer.KeyID}, []byte("sig")), wantMsg: `"rs256"`},
		{name: "no_alg", header: forge(map[string]string{"kid": signer.KeyID}, []byte("sig")), wantMsg: "algorithm"},
		{name: "long_alg_not_echoed", header: forge(map[string]string{"alg": strings.Repeat("X", 5000)}, nil), wantMsg: "algorithm"},
		{name: "header_not_base64", header: "Bearer !!!." + payload + ".c2ln", wantMsg: "header"},
		{name: "header_not_json", header: "Bearer " + base64.RawURLEncoding.EncodeToString([]byte("not json")) + "." + payload + ".c2ln", wantMsg: "header"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, err := verifier.Verify(t.Context(), tc.header)
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("got %v, %v; want ErrInvalidToken", id, err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tc.wantMsg)
			}
			if n := len(err.Error()); n > 200 {
				t.Errorf("error is %d bytes, want at most 200: %.300s", n, err)
			}
		})
	}
}
