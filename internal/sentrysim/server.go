package sentrysim

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// request is what a handler sees.
type request struct {
	r      *http.Request
	q      url.Values
	now    time.Time
	scopes []string
	caller *caller
}

// response is what a handler returns; the middleware writes it.
type response struct {
	status int
	body   []byte
	header http.Header
	html   bool
}

// route is one endpoint. An endpoint with its own rate limits (Sentry's
// rate_limits on the view) has its own group and view name: its budget is
// separate per caller from every other endpoint's.
type route struct {
	pattern string
	group   string // rate-limit group: GroupEvents, GroupStats, GroupDiscover or GroupDefault
	view    string // Sentry's view class, part of the rate-limit key; "" for the default group
	query   bool   // "Query timeout" faults apply
	h       func(*request) response
}

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	for _, rt := range []route{
		{"/api/0/organizations/{org}/{$}", GroupDefault, "", false, s.handleOrg},
		{"/api/0/organizations/{org}/projects/{$}", GroupDefault, "", false, s.handleProjects},
		{"/api/0/projects/{org}/{project}/events/{$}", GroupEvents, "ProjectEventsEndpoint", true, s.handleEvents},
		{"/api/0/organizations/{org}/issues/{$}", GroupDefault, "", true, s.handleIssues},
		{"/api/0/organizations/{org}/audit-logs/{$}", GroupDefault, "", false, s.handleAuditLogs},
		{"/api/0/organizations/{org}/stats_v2/{$}", GroupStats, "OrganizationStatsEndpointV2", true, s.handleStats},
		{"/api/0/organizations/{org}/events/{$}", GroupDiscover, "OrganizationEventsEndpoint", true, s.handleDiscover},
	} {
		s.mux.HandleFunc(rt.pattern, s.wrap(rt))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.write(w, notFound())
		s.countRequest("other", http.StatusNotFound, false, false)
	})
}

// ServeHTTP serves the simulated API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

type fault int

const (
	faultNone fault = iota
	fault502
	fault5xx
	faultHang
	faultQueryTimeout
	faultTruncated
)

func (s *Server) drawFault(queryRoute bool) (fault, time.Duration) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	f := s.faults
	if f.P502HTML+f.P5xx+f.PHang+f.PQueryTimeout+f.PTruncated <= 0 {
		return faultNone, 0
	}
	x := s.faultRNG.Float64()
	for _, c := range []struct {
		p float64
		f fault
	}{{f.P502HTML, fault502}, {f.P5xx, fault5xx}, {f.PHang, faultHang}, {f.PQueryTimeout, faultQueryTimeout}, {f.PTruncated, faultTruncated}} {
		if x < c.p {
			if c.f == faultQueryTimeout && !queryRoute {
				return faultNone, 0
			}
			return c.f, f.HangFor
		}
		x -= c.p
	}
	return faultNone, 0
}

func (s *Server) wrap(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.write(w, jsonResp(http.StatusMethodNotAllowed, jsonDetail(`Method "`+r.Method+`" not allowed.`)))
			s.countRequest(rt.group, http.StatusMethodNotAllowed, false, false)
			return
		}
		f, hangFor := s.drawFault(rt.query)
		release := func() {}
		if f == fault502 {
			s.write(w, response{status: http.StatusBadGateway, html: true, body: []byte(badGatewayHTML)})
			s.countRequest(rt.group, http.StatusBadGateway, false, true)
			return
		}
		if !s.cfg.SelfHosted && !s.cfg.RateLimits.Disabled {
			res := s.limiter.acquire(s.rateKey(r, rt), s.limitFor(rt.group), s.clock.Now())
			// Sentry's middleware frees the concurrency slot when the view
			// returns, before the body reaches the client: release before
			// writing, so a client's next request never races the body.
			release = sync.OnceFunc(res.release)
			defer release()
			res.setHeaders(w.Header())
			if res.limited {
				s.write(w, jsonResp(http.StatusTooManyRequests, res.body()))
				s.countRequest(rt.group, http.StatusTooManyRequests, true, false)
				return
			}
		}
		if f == faultHang {
			t := time.NewTimer(hangFor)
			select {
			case <-r.Context().Done():
			case <-t.C:
			}
			t.Stop()
		}
		who, authErr := s.authenticate(r)
		var resp response
		switch {
		case authErr != nil:
			resp = *authErr
		case f == fault5xx:
			resp = internalError(s.newEventID())
		case f == faultQueryTimeout:
			resp = badRequest("Query timeout. Please try again. If the problem persists try a smaller date range or fewer projects.")
		default:
			resp = rt.h(&request{r: r, q: r.URL.Query(), now: s.clock.Now(), scopes: who.scopes, caller: who})
			if f == faultTruncated && resp.status == http.StatusOK && len(resp.body) > 1 {
				resp.body = resp.body[:len(resp.body)/2]
			}
		}
		release()
		s.write(w, resp)
		s.countRequest(rt.group, resp.status, false, f != faultNone && f != faultHang)
	}
}

func (s *Server) write(w http.ResponseWriter, resp response) {
	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	if resp.html {
		h.Set("Content-Type", "text/html")
	} else {
		h.Set("Content-Type", "application/json")
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

// limitFor returns the configured limit of a rate-limit group.
func (s *Server) limitFor(group string) Limit {
	switch group {
	case GroupEvents:
		return s.cfg.RateLimits.Events
	case GroupStats:
		return s.cfg.RateLimits.Stats
	case GroupDiscover:
		return s.cfg.RateLimits.Discover
	}
	return s.cfg.RateLimits.Default
}

func (s *Server) authenticate(r *http.Request) (*caller, *response) {
	h := r.Header.Get("Authorization")
	if h == "" {
		resp := jsonResp(http.StatusUnauthorized, jsonDetail("Authentication credentials were not provided."))
		resp.header = http.Header{"Www-Authenticate": {`xBasic realm="api"`}}
		return nil, &resp
	}
	scheme, tok, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "bearer") {
		resp := jsonResp(http.StatusUnauthorized, jsonDetail("Authentication credentials were not provided."))
		resp.header = http.Header{"Www-Authenticate": {`xBasic realm="api"`}}
		return nil, &resp
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		resp := jsonResp(http.StatusUnauthorized, jsonDetail("Invalid token header. No credentials provided."))
		return nil, &resp
	}
	c := s.lookupToken(tok)
	if c == nil {
		resp := jsonResp(http.StatusUnauthorized, jsonDetail("Invalid token"))
		return nil, &resp
	}
	return c, nil
}

var allScopes = []string{"org:admin", "project:admin", "event:admin", "member:admin", "team:admin"}

// hasScope applies SENTRY_SCOPE_HIERARCHY_MAPPING: admin implies write
// implies read, per resource.
func hasScope(scopes []string, need string) bool {
	res, lvl, _ := strings.Cut(need, ":")
	for _, sc := range scopes {
		r, l, _ := strings.Cut(sc, ":")
		if r == res && scopeRank(l) >= scopeRank(lvl) && scopeRank(l) > 0 {
			return true
		}
	}
	return false
}

func scopeRank(l string) int {
	switch l {
	case "read":
		return 1
	case "write":
		return 2
	case "admin":
		return 3
	}
	return 0
}

// orgCheck resolves the org path value and the scope: 404, then 403.
func (s *Server) orgCheck(rq *request, scope string) *response {
	org := rq.r.PathValue("org")
	if org != s.cfg.Org && org != s.cfg.OrgID {
		resp := notFound()
		return &resp
	}
	if !hasScope(rq.scopes, scope) {
		resp := forbidden()
		return &resp
	}
	return nil
}

func jsonResp(status int, body []byte) response { return response{status: status, body: body} }

func jsonDetail(msg string) []byte {
	b := append([]byte(`{"detail":`), nil...)
	b = appendJSONString(b, msg)
	return append(b, '}')
}

func badRequest(msg string) response { return jsonResp(http.StatusBadRequest, jsonDetail(msg)) }

func notFound() response {
	return jsonResp(http.StatusNotFound, jsonDetail("The requested resource does not exist"))
}

func forbidden() response {
	return jsonResp(http.StatusForbidden, jsonDetail("You do not have permission to perform this action."))
}

func internalError(id [16]byte) response {
	return jsonResp(http.StatusInternalServerError, []byte(`{"detail":"Internal Error","errorId":"`+hexID(id)+`"}`))
}

const badGatewayHTML = `<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx</center>
</body>
</html>
`

// last returns the last value of a query parameter, as Django's
// QueryDict.get does.
func last(q url.Values, key string) (string, bool) {
	v, ok := q[key]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// perPage is clamp_pagination_per_page
// (src/sentry/utils/pagination_factory.py): default 100; 0, negative and
// above 100 are all "Invalid per_page value. Must be between 1 and 100.".
func perPage(q url.Values) (int64, *response) {
	raw, ok := last(q, "per_page")
	if !ok {
		return 100, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil {
		resp := badRequest("Invalid per_page parameter.")
		return 0, &resp
	}
	if n < 1 || n > 100 {
		resp := badRequest("Invalid per_page value. Must be between 1 and 100.")
		return 0, &resp
	}
	return n, nil
}

// cursorParam is get_cursor_from_request.
func cursorParam(q url.Values) (*cursor, *response) {
	raw, ok := last(q, "cursor")
	if !ok || raw == "" {
		return nil, nil
	}
	c, ok := parseCursor(raw)
	if !ok {
		resp := badRequest("Invalid cursor parameter.")
		return nil, &resp
	}
	return &c, nil
}

var statsPeriodRE = regexp.MustCompile(`^(\d+)([hdmsw]?)$`)

// parseStatsPeriod is parse_stats_period; ok is false when it does not parse.
func parseStatsPeriod(s string) (time.Duration, bool) {
	m := statsPeriodRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > 1<<40 {
		return 0, false
	}
	unit := map[string]time.Duration{"": time.Second, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
	return time.Duration(n) * unit, true
}

// parseDateTime accepts ISO 8601 (naive means UTC, offsets are converted)
// and epoch seconds.
func parseDateTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "-:") {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04Z07:00", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// dateRange is get_date_range_from_params. With optional and no parameter
// it returns ok=false. Errors carry InvalidParams' message.
func dateRange(q url.Values, now time.Time, optional bool, defaultPeriod time.Duration) (start, end time.Time, ok bool, errMsg string) {
	if sp, has := last(q, "statsPeriod"); has {
		d, good := parseStatsPeriod(sp)
		if !good {
			return start, end, false, "Invalid statsPeriod: " + pyRepr(sp)
		}
		start, end = now.Add(-d), now
	} else {
		st, _ := last(q, "start")
		en, _ := last(q, "end")
		switch {
		case st != "" || en != "":
			if st == "" || en == "" {
				return start, end, false, "start and end are both required"
			}
			var good bool
			if start, good = parseDateTime(st); !good {
				return start, end, false, st + " is not a valid ISO8601 date query"
			}
			if end, good = parseDateTime(en); !good {
				return start, end, false, en + " is not a valid ISO8601 date query"
			}
		case optional:
			return start, end, false, ""
		default:
			start, end = now.Add(-defaultPeriod), now
		}
	}
	if !start.Before(end) {
		return start, end, false, "start must be before end"
	}
	return start, end, true, ""
}

func pyRepr(s string) string {
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}
