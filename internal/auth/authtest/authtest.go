// Package authtest mints Google-style RS256 ID tokens with a throwaway key and
// serves the matching JWKS through an http.Client, so tests can run the real
// idtoken validator offline.
package authtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"
)

// CertsURL is where idtoken fetches Google's RS256 certificates.
const CertsURL = "https://www.googleapis.com/oauth2/v3/certs"

// IAPCertsURL is where idtoken fetches the ES256 (IAP) certificates. The
// signer serves one P-256 key there under ESKeyID, so that a test can reach
// idtoken's ES256 code path.
const (
	IAPCertsURL = "https://www.gstatic.com/iap/verify/public_key-jwk"
	ESKeyID     = "test-es256-key"
)

// esKey is the P-256 key served at IAPCertsURL.
var esKey = sync.OnceValue(func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
})

// Signer holds a signing key and serves its public half as a JWKS.
type Signer struct {
	Key   *rsa.PrivateKey
	KeyID string

	certFetches atomic.Int64
}

// NewSigner generates a fresh 2048-bit RSA key.
func NewSigner(tb testing.TB) *Signer {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatalf("failed to generate rsa key: %v", err)
	}
	return &Signer{Key: key, KeyID: "test-key-1"}
}

// HTTPClient returns a client that answers CertsURL with this signer's JWKS
// (and IAPCertsURL with a P-256 key) and fails every other request, so
// nothing leaves the process.
func (s *Signer) HTTPClient() *http.Client {
	return &http.Client{Transport: s.Transport()}
}

// Transport is the RoundTripper of HTTPClient.
func (s *Signer) Transport() http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		var keys []map[string]string
		switch r.URL.String() {
		case CertsURL:
			s.certFetches.Add(1)
			keys = []map[string]string{{
				"kty": "RSA",
				"alg": "RS256",
				"use": "sig",
				"kid": s.KeyID,
				"n":   base64.RawURLEncoding.EncodeToString(s.Key.N.Bytes()),
				"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(s.Key.E)).Bytes()),
			}}
		case IAPCertsURL:
			k := esKey()
			keys = []map[string]string{{
				"kty": "EC",
				"alg": "ES256",
				"crv": "P-256",
				"use": "sig",
				"kid": ESKeyID,
				"x":   base64.RawURLEncoding.EncodeToString(k.X.FillBytes(make([]byte, 32))),
				"y":   base64.RawURLEncoding.EncodeToString(k.Y.FillBytes(make([]byte, 32))),
			}}
		default:
			return &http.Response{
				StatusCode: http.StatusNotFound,
				Header:     http.Header{},
				Body:       io.NopCloser(bytes.NewReader(nil)),
				Request:    r,
			}, nil
		}
		body, err := json.Marshal(map[string]any{"keys": keys})
		if err != nil {
			return nil, err
		}
		return &http.Response{
			StatusCode: http.StatusOK,
			Header:     http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"public, max-age=3600"}},
			Body:       io.NopCloser(bytes.NewReader(body)),
			Request:    r,
		}, nil
	})
}

// CertFetches reports how many times the JWKS was fetched.
func (s *Signer) CertFetches() int64 { return s.certFetches.Load() }

// Validator returns a real *idtoken.Validator that trusts this signer.
func (s *Signer) Validator(tb testing.TB) *idtoken.Validator {
	tb.Helper()
	v, err := idtoken.NewValidator(context.Background(), option.WithHTTPClient(s.HTTPClient()))
	if err != nil {
		tb.Fatalf("failed to create validator: %v", err)
	}
	return v
}

// Claims are a token's payload.
type Claims map[string]any

// PushClaims returns the claims of a valid Pub/Sub push token for audience
// and email, issued now and valid for an hour.
func PushClaims(audience, email string) Claims {
	now := time.Now()
	return Claims{
		"aud":            audience,
		"azp":            "113774264463038321964",
		"email":          email,
		"email_verified": true,
		"exp":            now.Add(time.Hour).Unix(),
		"iat":            now.Unix(),
		"iss":            "https://accounts.google.com",
		"sub":            "113774264463038321964",
	}
}

// Token signs claims with this signer's key and key id.
func (s *Signer) Token(tb testing.TB, claims Claims) string {
	tb.Helper()
	return Sign(tb, s.Key, s.KeyID, claims)
}

// Sign builds an RS256 JWT signed by key with the given kid.
func Sign(tb testing.TB, key *rsa.PrivateKey, kid string, claims Claims) string {
	tb.Helper()
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid})
	if err != nil {
		tb.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		tb.Fatalf("failed to sign token: %v", err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Forge builds a token with the given header and claims and a signature of
// sig (raw bytes, base64url-encoded here), without signing anything: for
// tokens that must be refused before any signature check.
func Forge(tb testing.TB, header map[string]string, claims Claims, sig []byte) string {
	tb.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		tb.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(payload) + "." +
		base64.RawURLEncoding.EncodeToString(sig)
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
