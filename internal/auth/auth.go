// Package auth verifies the Google-signed OIDC ID tokens that Pub/Sub push
// deliveries (and operators' backfill requests) carry: signature and audience
// through one idtoken validator, then the issuer, the email and its
// verification flag, which the validator does not check.
package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/api/idtoken"
)

// Errors returned by Verify. ErrMissingToken and ErrInvalidToken mean 401;
// ErrForbidden means 403; ErrUnavailable means the token could not be checked
// (Google's signing certificates could not be fetched in time, or the
// verification timed out): 503, so that the caller retries and operators look
// at connectivity rather than at the caller's token.
var (
	ErrMissingToken = errors.New("missing bearer token")
	ErrInvalidToken = errors.New("invalid token")
	ErrForbidden    = errors.New("identity not allowed")
	ErrUnavailable  = errors.New("token verification unavailable")
)

// Validator checks a token's signature, audience and expiry. *idtoken.Validator
// implements it; build one at start-up with NewGoogleValidator.
type Validator interface {
	Validate(ctx context.Context, token, audience string) (*idtoken.Payload, error)
}

var _ Validator = (*idtoken.Validator)(nil)

// googleIssuers are the issuers of Google-signed ID tokens.
var googleIssuers = map[string]bool{
	"https://accounts.google.com": true,
	"accounts.google.com":         true,
}

// Identity is the verified caller.
type Identity struct {
	Email   string
	Subject string
}

// Verifier verifies bearer tokens for one audience and a list of allowed
// service-account emails.
type Verifier struct {
	validator Validator
	audience  string
	allowed   map[string]bool
	timeout   time.Duration
}

// NewVerifier returns a Verifier. It refuses an empty audience (the validator
// would then accept a token minted for any audience) and an empty list of
// allowed emails (nobody could ever be let in).
func NewVerifier(v Validator, audience string, allowedEmails []string) (*Verifier, error) {
	if v == nil {
		return nil, errors.New("auth: nil validator")
	}
	audience = strings.TrimSpace(audience)
	if audience == "" {
		return nil, errors.New("auth: the token audience must not be empty")
	}
	allowed := make(map[string]bool, len(allowedEmails))
	for _, e := range allowedEmails {
		if e = strings.ToLower(strings.TrimSpace(e)); e != "" {
			allowed[e] = true
		}
	}
	if len(allowed) == 0 {
		return nil, errors.New("auth: at least one allowed email is required")
	}
	return &Verifier{validator: v, audience: audience, allowed: allowed, timeout: DefaultVerifyTimeout}, nil
}

// WithTimeout returns a copy of v whose verifications are bounded by d
// instead of DefaultVerifyTimeout (d <= 0 keeps the current bound).
func (v *Verifier) WithTimeout(d time.Duration) *Verifier {
	cp := *v
	if d > 0 {
		cp.timeout = d
	}
	return &cp
}

// Audience returns the audience tokens must carry.
func (v *Verifier) Audience() string { return v.audience }

// Verify checks an Authorization header value ("Bearer <JWT>").
func (v *Verifier) Verify(ctx context.Context, authorization string) (*Identity, error) {
	token, err := BearerToken(authorization)
	if err != nil {
		return nil, err
	}
	return v.VerifyToken(ctx, token)
}

// VerifyToken checks a raw JWT: its algorithm (RS256 only), then signature,
// audience and expiry (through the validator, within the verifier's
// timeout), then issuer, email and email_verified. Errors wrap
// ErrMissingToken, ErrInvalidToken, ErrForbidden or ErrUnavailable and never
// contain the token.
func (v *Verifier) VerifyToken(ctx context.Context, token string) (*Identity, error) {
	if token == "" {
		return nil, ErrMissingToken
	}
	if err := checkAlgorithm(token); err != nil {
		return nil, err
	}
	vctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	p, err := v.validator.Validate(vctx, token, v.audience)
	switch {
	case errors.Is(err, errCertsFetch), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// Not the token's fault: the check itself could not be done.
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if !googleIssuers[p.Issuer] {
		return nil, fmt.Errorf("%w: issuer %q is not Google", ErrInvalidToken, p.Issuer)
	}
	email, _ := p.Claims["email"].(string)
	if email == "" {
		return nil, fmt.Errorf("%w: token has no email claim", ErrForbidden)
	}
	if verified, _ := p.Claims["email_verified"].(bool); !verified {
		return nil, fmt.Errorf("%w: email %q is not verified", ErrForbidden, email)
	}
	if !v.allowed[strings.ToLower(email)] {
		return nil, fmt.Errorf("%w: email %q is not in the allowed list", ErrForbidden, email)
	}
	return &Identity{Email: email, Subject: p.Subject}, nil
}

// checkAlgorithm refuses a token whose header names any algorithm but RS256.
// Pub/Sub push tokens and other Google-signed ID tokens are RS256; refusing
// the rest before the validator runs keeps attacker-chosen tokens away from
// idtoken's ES256 check, which panics on a signature shorter than 32 bytes.
// The algorithm is quoted at most 16 characters long: it comes from an
// unauthenticated caller and ends up in the logs.
func checkAlgorithm(token string) error {
	seg, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("%w: token header is not base64url", ErrInvalidToken)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("%w: token header is not a JSON object", ErrInvalidToken)
	}
	if h.Alg != "RS256" {
		return fmt.Errorf("%w: signing algorithm %.16q is not RS256", ErrInvalidToken, h.Alg)
	}
	return nil
}

// BearerToken extracts the token from an Authorization header value. An empty
// header is ErrMissingToken; any other scheme, or an empty or malformed token,
// is ErrInvalidToken.
func BearerToken(authorization string) (string, error) {
	authorization = strings.TrimSpace(authorization)
	if authorization == "" {
		return "", ErrMissingToken
	}
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: authorization header is not a bearer token", ErrInvalidToken)
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t") || strings.Count(token, ".") != 2 {
		return "", fmt.Errorf("%w: malformed bearer token", ErrInvalidToken)
	}
	return token, nil
}
