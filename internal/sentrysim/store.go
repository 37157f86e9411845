package sentrysim

import (
	"cmp"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// event is one stored event, kept small and pointer-light (one string) so a
// million of them are cheap for the garbage collector.
//
// A project's events are kept in one slice sorted by (ts, id), so a time
// window is two binary searches (project.window) and a scan; an endpoint
// that needs other aggregates (Discover, say) scans that range.
type event struct {
	id        [16]byte
	ts        int64 // event timestamp, unix seconds (Snuba's timestamp column: filters and order)
	visibleAt int64 // unix nanos
	received  int64 // unix nanos
	msg       string
	group     int32 // index into project.groups
	level     uint8
	ms        uint16 // milliseconds of the timestamp (timestamp_ms; dateCreated only)
	seq       uint32 // varies user, tags…
}

// eventCmp orders events oldest first: timestamp, then event id. The API
// order (newest first: -timestamp, -event_id) is the reverse.
func eventCmp(a, b event) int {
	if a.ts != b.ts {
		if a.ts < b.ts {
			return -1
		}
		return 1
	}
	return compareID(a.id, b.id)
}

func compareID(a, b [16]byte) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

type outcome struct {
	countAt int64 // unix nanos when stats_v2 counts it
	recvSec int64 // received time, unix seconds
}

// project holds a project's events. visible is sorted oldest first so that
// live arrivals append; pending holds events not yet visible.
type project struct {
	// Guarded by Server.mu.
	id       int64
	idStr    string
	slug     string
	name     string
	platform string
	live     bool
	created  time.Time

	mu           sync.Mutex
	visible      []event
	pending      []event // sorted by visibleAt when !pendingDirty
	pendingDirty bool
	nextDue      int64
	outs         []outcome
	outsDirty    bool
	nextOut      int64
	minutes      map[int64]int64 // counted accepted outcomes per received minute
	groups       []*group
	groupBy      map[string]*group
}

// group is an issue. Static fields are set at creation; the rest (and
// level, which SetIssueLevel changes) are guarded by the project's mutex.
type group struct {
	idx      int32
	id       int64
	idStr    string
	shortID  string
	tpl      template
	level    uint8
	priority string
	release  string

	status           string
	substatus        string // "" renders null
	assignee         string // user id; "" unassigned
	priorityLockedAt int64  // unix nanos of the last SetIssuePriority; 0 none
	noSeenStats      bool   // SetIssueSeenStatsMissing
	firstSeen        int64
	firstSeenMs      uint16
	lastSeen         int64
	count            int64
	users            [8]uint64
	userCount        int64
}

// defaultSubstatus is the substatus an issue gets with a status.
func defaultSubstatus(status string) string {
	switch status {
	case "unresolved":
		return "ongoing"
	case "ignored":
		return "archived_forever"
	}
	return ""
}

func (p *project) addPendingLocked(e event, outcomeDelay time.Duration) {
	p.pending = append(p.pending, e)
	p.pendingDirty = true
	p.nextDue = min(p.nextDue, e.visibleAt)
	o := outcome{countAt: max(e.visibleAt, e.received) + int64(outcomeDelay), recvSec: floorDiv(e.received, int64(time.Second))}
	p.outs = append(p.outs, o)
	p.outsDirty = true
	p.nextOut = min(p.nextOut, o.countAt)
}

// promoteLocked makes every pending event with visibleAt <= now visible, and
// counts every outcome that is due. Visibility is monotonic: moving a clock
// backwards does not hide events again.
func (p *project) promoteLocked(now int64) {
	if now >= p.nextDue {
		if p.pendingDirty {
			slices.SortFunc(p.pending, func(a, b event) int { return cmp.Compare(a.visibleAt, b.visibleAt) })
			p.pendingDirty = false
		}
		n, _ := slices.BinarySearchFunc(p.pending, now+1, func(e event, t int64) int { return cmp.Compare(e.visibleAt, t) })
		due := p.pending[:n]
		slices.SortFunc(due, eventCmp)
		for _, e := range due {
			p.groups[e.group].seen(e)
		}
		p.visible = mergeBack(p.visible, due)
		p.pending = slices.Clone(p.pending[n:])
		p.nextDue = maxInt64
		if len(p.pending) > 0 {
			p.nextDue = p.pending[0].visibleAt
		}
	}
	if now >= p.nextOut {
		if p.outsDirty {
			slices.SortFunc(p.outs, func(a, b outcome) int { return cmp.Compare(a.countAt, b.countAt) })
			p.outsDirty = false
		}
		n := 0
		for n < len(p.outs) && p.outs[n].countAt <= now {
			p.minutes[floorDiv(p.outs[n].recvSec, 60)]++
			n++
		}
		p.outs = slices.Clone(p.outs[n:])
		p.nextOut = maxInt64
		if len(p.outs) > 0 {
			p.nextOut = p.outs[0].countAt
		}
	}
}

// mergeBack merges the sorted slice add into the sorted slice dst in place,
// from the back, so the cost is proportional to len(add) plus the distance
// of the oldest added event from the end.
func mergeBack(dst, add []event) []event {
	if len(add) == 0 {
		return dst
	}
	i := len(dst) - 1
	dst = append(dst, add...)
	j := len(add) - 1
	k := len(dst) - 1
	for j >= 0 {
		if i >= 0 && eventCmp(dst[i], add[j]) > 0 {
			dst[k] = dst[i]
			i--
		} else {
			dst[k] = add[j]
			j--
		}
		k--
	}
	return dst
}

func (g *group) seen(e event) {
	if g.count == 0 || e.ts < g.firstSeen || (e.ts == g.firstSeen && e.ms < g.firstSeenMs) {
		g.firstSeen, g.firstSeenMs = e.ts, e.ms
	}
	if e.ts > g.lastSeen {
		g.lastSeen = e.ts
	}
	g.count++
	u := e.seq % userPool
	if g.users[u/64]&(1<<(u%64)) == 0 {
		g.users[u/64] |= 1 << (u % 64)
		g.userCount++
	}
}

const userPool = 500

// window returns the index range [lo, hi) of visible events with
// start <= ts < end (unix seconds).
func (p *project) window(start, end int64) (lo, hi int) {
	lo, _ = slices.BinarySearchFunc(p.visible, start, func(e event, t int64) int { return cmp.Compare(e.ts, t) })
	hi, _ = slices.BinarySearchFunc(p.visible, end, func(e event, t int64) int { return cmp.Compare(e.ts, t) })
	return lo, max(lo, hi)
}

// ceilSec returns the first whole second at or after t: the Snuba
// timestamp t' of an event (whole seconds) satisfies t' >= t exactly when
// t' >= ceilSec(t).
func ceilSec(t time.Time) int64 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return sec
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func hexID(id [16]byte) string { return hex.EncodeToString(id[:]) }

func parseHexID(s string) ([16]byte, bool) {
	var id [16]byte
	s = strings.ReplaceAll(strings.ToLower(s), "-", "")
	if len(s) != 32 {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, false
	}
	return id, true
}

var levels = []string{"fatal", "error", "warning", "info", "debug"}

func levelIndex(l string) uint8 {
	for i, v := range levels {
		if v == l {
			return uint8(i)
		}
	}
	return 1
}

var platforms = []string{"python", "javascript", "go", "java", "node", "ruby"}

// newGroupLocked creates an issue in p (p.mu held).
func (s *Server) newGroupLocked(p *project, tpl template, level uint8, status string) *group {
	seq := s.groupSeq.Add(1)
	id := 6000000000 + seq*13
	prio := "medium"
	switch level {
	case 0:
		prio = "high"
	case 2, 3, 4:
		prio = "low"
	}
	g := &group{
		idx:       int32(len(p.groups)),
		id:        id,
		idStr:     strconv.FormatInt(id, 10),
		shortID:   strings.ToUpper(p.slug) + "-" + strconv.FormatInt(int64(len(p.groups)+1), 36),
		tpl:       tpl,
		level:     level,
		priority:  strings.ToLower(prio),
		release:   p.slug + "@1." + strconv.Itoa(int(seq%9)) + "." + strconv.Itoa(int(seq%23)),
		status:    status,
		substatus: defaultSubstatus(status),
	}
	g.shortID = strings.ToUpper(g.shortID)
	p.groups = append(p.groups, g)
	return g
}

// template is the static description of an issue's events.
type template struct {
	excType   string
	value     string
	culprit   string
	location  string
	function  string
	mechanism string
	handled   bool
}

func (t template) title() string {
	if t.excType == "" {
		return t.value
	}
	return t.excType + ": " + t.value
}

func templateFromMessage(msg, platform string) template {
	t := template{value: msg, culprit: "", location: "", handled: true, mechanism: "generic"}
	if typ, val, ok := strings.Cut(msg, ": "); ok && !strings.ContainsAny(typ, " \t") {
		t.excType, t.value = typ, val
	}
	pool := templatesByPlatform[platform]
	if len(pool) > 0 {
		h := 0
		for _, c := range msg {
			h = h*31 + int(c)
		}
		base := pool[(h&0x7fffffff)%len(pool)]
		t.culprit, t.location, t.function = base.culprit, base.location, base.function
	}
	return t
}

var templatesByPlatform = map[string][]template{
	"python": {
		{"KeyError", "'user_id'", "app.views.checkout in get_cart", "app/views/checkout.py", "get_cart", "logging", false},
		{"ValueError", "invalid literal for int() with base 10: 'abc'", "app.api.orders in parse_quantity", "app/api/orders.py", "parse_quantity", "generic", true},
		{"OperationalError", "could not connect to server: Connection refused", "django.db.backends.utils in _execute", "django/db/backends/utils.py", "_execute", "celery", false},
		{"TimeoutError", "Task timed out after 30 seconds", "tasks.reports in render_monthly", "tasks/reports.py", "render_monthly", "celery", false},
		{"AttributeError", "'NoneType' object has no attribute 'email'", "app.notifications.mail in send_receipt", "app/notifications/mail.py", "send_receipt", "generic", true},
	},
	"javascript": {
		{"TypeError", "Cannot read properties of undefined (reading 'id')", "renderUserCard(app/components/UserCard)", "app/components/UserCard.tsx", "renderUserCard", "onerror", false},
		{"ChunkLoadError", "Loading chunk 4213 failed.", "?(webpack/runtime/jsonp chunk loading)", "webpack/runtime/jsonp chunk loading", "?", "onunhandledrejection", false},
		{"Error", "Network request failed", "fetchCart(app/store/cart)", "app/store/cart.ts", "fetchCart", "generic", true},
		{"RangeError", "Maximum call stack size exceeded", "walkTree(app/utils/tree)", "app/utils/tree.ts", "walkTree", "onerror", false},
	},
	"go": {
		{"*errors.errorString", "context deadline exceeded", "main.(*Server).handleOrders", "cmd/api/orders.go", "(*Server).handleOrders", "generic", true},
		{"*url.Error", "dial tcp 10.0.3.7:443: connect: connection refused", "payments.(*Client).Charge", "internal/payments/client.go", "(*Client).Charge", "generic", true},
		{"runtime.Error", "invalid memory address or nil pointer dereference", "inventory.(*Store).Reserve", "internal/inventory/store.go", "(*Store).Reserve", "panic", false},
	},
	"java": {
		{"NullPointerException", "Cannot invoke \"com.acme.Order.getId()\" because \"order\" is null", "com.acme.orders.OrderService in submit", "OrderService.java", "submit", "UncaughtExceptionHandler", false},
		{"SQLTransientConnectionException", "HikariPool-1 - Connection is not available, timed out after 30000ms.", "com.zaxxer.hikari.pool.HikariPool in createTimeoutException", "HikariPool.java", "createTimeoutException", "generic", true},
		{"IllegalStateException", "Expected BEGIN_OBJECT but was STRING at line 1 column 1", "com.acme.sync.FeedParser in parse", "FeedParser.java", "parse", "generic", true},
	},
	"node": {
		{"Error", "connect ECONNREFUSED 127.0.0.1:6379", "RedisClient.connect(node_modules/ioredis/built/redis)", "node_modules/ioredis/built/redis/index.js", "RedisClient.connect", "onunhandledrejection", false},
		{"SyntaxError", "Unexpected token < in JSON at position 0", "JSON.parse(<anonymous>)", "src/lib/http.js", "parseBody", "generic", true},
		{"TypeError", "Cannot destructure property 'items' of 'undefined' as it is undefined.", "buildInvoice(src/billing/invoice)", "src/billing/invoice.js", "buildInvoice", "onuncaughtexception", false},
	},
	"ruby": {
		{"NoMethodError", "undefined method `name' for nil:NilClass", "UsersController#show", "app/controllers/users_controller.rb", "show", "rack", false},
		{"ActiveRecord::RecordNotFound", "Couldn't find Order with 'id'=91823", "OrdersController#update", "app/controllers/orders_controller.rb", "update", "rack", true},
		{"Redis::TimeoutError", "Connection timed out", "SidekiqWorker#perform", "app/workers/sidekiq_worker.rb", "perform", "sidekiq", false},
	},
}

// maxSecsInFuture is how far after its receipt Relay accepts an event's
// timestamp (relay-event-normalization, MAX_SECS_IN_FUTURE: 60 s).
const maxSecsInFuture = 60 * time.Second

// relayTimestamp is the timestamp Relay stores for an event with SDK
// timestamp ts received at received: normalize_timestamps
// (relay-event-normalization/src/validation.rs) flags a timestamp more than
// 60 s in the future or older than the project's event retention
// (max_secs_in_past: retention_days * 24 * 3600, relay-server
// processing/utils/event.rs), and the clock-drift processor then moves it
// to the receive time. Anything in between is kept as the SDK sent it, so
// an event cached offline for days keeps its old timestamp. A negative
// retention (unlimited) bounds nothing in the past.
func relayTimestamp(ts, received time.Time, retention time.Duration) time.Time {
	if ts.After(received.Add(maxSecsInFuture)) || (retention > 0 && ts.Before(received.Add(-retention))) {
		return received
	}
	return ts
}
