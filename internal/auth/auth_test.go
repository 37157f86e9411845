package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/secops-collectors/sentry-gcs/internal/auth"
	"github.com/secops-collectors/sentry-gcs/internal/auth/authtest"
)

const (
	audience = "https://sentry-gcs-abc-ew.a.run.app/pubsub/push"
	pushSA   = "push-invoker@proj.iam.gserviceaccount.com"
)

func TestVerifier_Verify(t *testing.T) {
	t.Parallel()

	signer := authtest.NewSigner(t)
	verifier, err := auth.NewVerifier(signer.Validator(t), audience, []string{"other@proj.iam.gserviceaccount.com", " Push-Invoker@proj.iam.gserviceaccount.com "})
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}

	with := func(mutate func(authtest.Claims)) string {
		c := authtest.PushClaims(audience, pushSA)
		mutate(c)
		return "Bearer " + signer.Token(t, c)
	}
	valid := with(func(authtest.Claims) {})

	cases := []struct {
		name      string
		header    string
		wantEmail string
		wantErr   error
		wantMsg   string
	}{
		{name: "valid", header: valid, wantEmail: pushSA},
		{name: "lowercase_scheme", header: "bearer " + strings.TrimPrefix(valid, "Bearer "), wantEmail: pushSA},
		{name: "issuer_without_scheme", header: with(func(c authtest.Claims) { c["iss"] = "accounts.google.com" }), wantEmail: pushSA},
		{name: "wrong_audience", header: with(func(c authtest.Claims) { c["aud"] = "https://elsewhere.example" }), wantErr: auth.ErrInvalidToken, wantMsg: "audience"},
		{name: "wrong_issuer", header: with(func(c authtest.Claims) { c["iss"] = "https://evil.example" }), wantErr: auth.ErrInvalidToken, wantMsg: "issuer"},
		{name: "unverified_email", header: with(func(c authtest.Claims) { c["email_verified"] = false }), wantErr: auth.ErrForbidden, wantMsg: "not verified"},
		{name: "email_verified_as_string", header: with(func(c authtest.Claims) { c["email_verified"] = "true" }), wantErr: auth.ErrForbidden, wantMsg: "not verified"},
		{name: "unlisted_email", header: with(func(c authtest.Claims) { c["email"] = "intruder@proj.iam.gserviceaccount.com" }), wantErr: auth.ErrForbidden, wantMsg: "not in the allowed list"},
		{name: "no_email", header: with(func(c authtest.Claims) { delete(c, "email") }), wantErr: auth.ErrForbidden, wantMsg: "no email"},
		{name: "expired", header: with(func(c authtest.Claims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }), wantErr: auth.ErrInvalidToken, wantMsg: "expired"},
		{
			name:    "bad_signature",
			header:  "Bearer " + authtest.Sign(t, otherKey, signer.KeyID, authtest.PushClaims(audience, pushSA)),
			wantErr: auth.ErrInvalidToken,
		},
		{
			name:    "unknown_kid",
			header:  "Bearer " + authtest.Sign(t, signer.Key, "some-other-kid", authtest.PushClaims(audience, pushSA)),
			wantErr: auth.ErrInvalidToken,
		},
		{
			name:    "tampered_payload",
			header:  tamper(t, valid),
			wantErr: auth.ErrInvalidToken,
		},
		{name: "missing_header", header: "", wantErr: auth.ErrMissingToken},
		{name: "blank_header", header: "   ", wantErr: auth.ErrMissingToken},
		{name: "basic_scheme", header: "Basic dXNlcjpwYXNz", wantErr: auth.ErrInvalidToken, wantMsg: "not a bearer token"},
		{name: "bearer_without_token", header: "Bearer ", wantErr: auth.ErrInvalidToken},
		{name: "bearer_garbage", header: "Bearer not-a-jwt", wantErr: auth.ErrInvalidToken, wantMsg: "malformed"},
		{name: "bearer_bad_base64", header: "Bearer a.b.c", wantErr: auth.ErrInvalidToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, err := verifier.Verify(t.Context(), tc.header)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got error %v, want %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("error %q does not mention %q", err, tc.wantMsg)
				}
				if tok := strings.TrimPrefix(tc.header, "Bearer "); len(tok) > 20 && strings.Contains(err.Error(), tok) {
					t.Errorf("error leaks the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got, want := id.Email, tc.wantEmail; got != want {
				t.Errorf("email: got %q, want %q", got, want)
			}
		})
	}
}

func TestVerifier_fetchesCertsOnce(t *testing.T) {
	t.Parallel()

	signer := authtest.NewSigner(t)
	verifier, err := auth.NewVerifier(signer.Validator(t), audience, []string{pushSA})
	if err != nil {
		t.Fatal(err)
	}
	tok := "Bearer " + signer.Token(t, authtest.PushClaims(audience, pushSA))
	for range 5 {
		if _, err := verifier.Verify(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := signer.CertFetches(), int64(1); got != want {
		t.Errorf("certificate fetches: got %d, want %d (the validator should cache)", got, want)
	}
}

func TestNewVerifier_refuses(t *testing.T) {
	t.Parallel()

	v := authtest.NewSigner(t).Validator(t)
	cases := []struct {
		name      string
		validator auth.Validator
		audience  string
		emails    []string
		wantErr   string
	}{
		{name: "empty_audience", validator: v, audience: "", emails: []string{pushSA}, wantErr: "audience must not be empty"},
		{name: "blank_audience", validator: v, audience: "  ", emails: []string{pushSA}, wantErr: "audience must not be empty"},
		{name: "no_emails", validator: v, audience: audience, wantErr: "at least one allowed email"},
		{name: "blank_emails", validator: v, audience: audience, emails: []string{"", " "}, wantErr: "at least one allowed email"},
		{name: "nil_validator", audience: audience, emails: []string{pushSA}, wantErr: "nil validator"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := auth.NewVerifier(tc.validator, tc.audience, tc.emails)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

// tamper swaps the payload of a signed token for another one, keeping the
// original signature.
func tamper(t *testing.T, header string) string {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(header, "Bearer "), ".")
	signer := authtest.NewSigner(t)
	forged := strings.Split(signer.Token(t, authtest.PushClaims(audience, "intruder@x.iam.gserviceaccount.com")), ".")
	return "Bearer " + parts[0] + "." + forged[1] + "." + parts[2]
}
