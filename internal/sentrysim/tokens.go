package sentrysim

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// TokenKind says what a bearer token belongs to. It decides the token's
// project membership and its rate-limit key.
type TokenKind int

const (
	// TokenInternalIntegration is the token of an internal integration (a
	// Sentry app installed on the organisation). It is a member of every
	// project, and its requests are rate limited per organisation: every
	// internal-integration token of the organisation shares one budget
	// (src/sentry/ratelimits/utils.py, get_rate_limit_key: category "org",
	// keyed by the installation's organisation id). It is the zero value, so
	// a TokenInfo with only Scopes set behaves like an entry of Config.Tokens.
	TokenInternalIntegration TokenKind = iota
	// TokenUser is a user's personal token. It is a member only of the
	// projects of the user's teams (TokenInfo.Projects), and its requests are
	// rate limited per user (category "user", keyed by the user id).
	TokenUser
)

func (k TokenKind) String() string {
	switch k {
	case TokenInternalIntegration:
		return "internal-integration"
	case TokenUser:
		return "user"
	}
	return "TokenKind(" + strconv.Itoa(int(k)) + ")"
}

// TokenInfo describes a bearer token.
type TokenInfo struct {
	Kind TokenKind
	// Scopes are the token's scopes; nil means every scope (as with an
	// empty Config.Tokens), an empty non-nil slice means none.
	Scopes []string
	// Projects lists, for a TokenUser, the projects (numeric ids or slugs;
	// a slug matches the project's current slug) whose teams the user is a
	// member of. Without a project parameter the issues endpoint and
	// stats_v2 grouped by project cover exactly these. Ignored for internal
	// integrations, which are members of every project.
	Projects []string
	// UserID identifies the user for rate limiting: tokens with the same
	// UserID share their budgets. Default: the token itself (one user per
	// token). Ignored for internal integrations.
	UserID string
	// NoGlobalAccess, for a TokenUser, removes the access that open
	// membership (which the simulated organisation has) gives every member:
	// project=-1 and explicit project ids are then limited to the member
	// projects too.
	NoGlobalAccess bool
}

// caller is the authenticated identity of a request.
type caller struct {
	kind       TokenKind
	scopes     []string
	member     map[string]bool // TokenUser: ids or slugs
	userID     string
	restricted bool // TokenUser without global access
}

func newCaller(token string, ti TokenInfo) *caller {
	c := &caller{kind: ti.Kind, scopes: ti.Scopes, userID: ti.UserID, restricted: ti.NoGlobalAccess}
	if c.scopes == nil {
		c.scopes = allScopes
	}
	if c.userID == "" {
		c.userID = token
	}
	if ti.Kind == TokenUser {
		c.member = make(map[string]bool, len(ti.Projects))
		for _, p := range ti.Projects {
			c.member[p] = true
		}
	}
	return c
}

// isMember is Access.has_project_membership. s.mu must be held (slug).
func (c *caller) isMember(p *project) bool {
	if c.kind != TokenUser {
		return true
	}
	return c.member[p.idStr] || c.member[p.slug]
}

// hasAccess is Access.has_project_access: members of an organisation with
// open membership can access every project. s.mu must be held.
func (c *caller) hasAccess(p *project) bool {
	return !c.restricted || c.isMember(p)
}

// SetToken adds or replaces a token. When the Config declared no tokens at
// all, tokens that were never set keep working as internal integrations
// with every scope.
func (s *Server) SetToken(token string, info TokenInfo) {
	info.Scopes = slices.Clone(info.Scopes)
	info.Projects = slices.Clone(info.Projects)
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	s.tokens[token] = info
}

// lookupToken returns the caller for a bearer token, or nil when the token
// is unknown.
func (s *Server) lookupToken(tok string) *caller {
	s.tokMu.RLock()
	ti, ok := s.tokens[tok]
	s.tokMu.RUnlock()
	if !ok {
		if !s.openAuth {
			return nil
		}
		ti = TokenInfo{Kind: TokenInternalIntegration}
	}
	return newCaller(tok, ti)
}

// bearer returns the token of an Authorization header, "" when there is
// none.
func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// rateKey is get_rate_limit_key (src/sentry/ratelimits/utils.py):
// f"{category}:{group}:{view}:{method}:{id}" for endpoints with their own
// limits, f"{category}:{group}:{method}:{id}" for the rest. The category
// is "org" (keyed by organisation id) for an internal integration, "user"
// (keyed by user id) for a user token, and "ip" otherwise.
func (s *Server) rateKey(r *http.Request, rt route) string {
	var category, id string
	var c *caller
	if tok := bearer(r); tok != "" {
		c = s.lookupToken(tok)
	}
	if c != nil {
		switch c.kind {
		case TokenUser:
			category, id = "user", c.userID
		default:
			category, id = "org", s.cfg.OrgID
		}
	} else {
		category, id = "ip", r.RemoteAddr
		if i := strings.LastIndexByte(id, ':'); i > 0 {
			id = id[:i]
		}
	}
	if rt.view != "" {
		return category + ":default:" + rt.view + ":" + r.Method + ":" + id
	}
	return category + ":default:" + r.Method + ":" + id
}

// getProjects is OrganizationEndpoint.get_projects
// (src/sentry/api/bases/organization.py): with no project parameter, the
// live projects the caller is a member of ("No project ids === all
// projects I am a member of"); with project=-1, every live project the
// caller can access; with explicit ids, exactly those (403 unless every one
// is live and accessible).
func (s *Server) getProjects(rq *request, raw []string) ([]*project, *response) {
	ids, all, e := parseProjectIDs(raw)
	if e != nil {
		return nil, e
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*project
	for _, p := range s.projects {
		if !p.live || (len(ids) > 0 && !ids[p.idStr]) {
			continue
		}
		ok := rq.caller.isMember(p)
		if len(ids) > 0 || all {
			ok = rq.caller.hasAccess(p)
		}
		if ok {
			out = append(out, p)
		}
	}
	if len(ids) > 0 && len(out) != len(ids) {
		resp := forbidden()
		return nil, &resp
	}
	return out, nil
}

// parseProjectIDs parses repeated project parameters. all reports the
// set {-1} (ALL_ACCESS_PROJECTS); -1 among other ids is just an id that
// does not exist.
func parseProjectIDs(raw []string) (ids map[string]bool, all bool, e *response) {
	ids = map[string]bool{}
	for _, v := range raw {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			resp := badRequest("Invalid project parameter. Values must be numbers.")
			return nil, false, &resp
		}
		ids[strconv.FormatInt(n, 10)] = true
	}
	if len(ids) == 1 && ids["-1"] {
		return map[string]bool{}, true, nil
	}
	return ids, false, nil
}
