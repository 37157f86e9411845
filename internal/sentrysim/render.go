package sentrysim

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// rowCtx is what rendering an event row needs, copied out of the locks.
type rowCtx struct {
	projectID string
	platform  string
	e         event
	g         *group // static fields only
}

var (
	countries = [][3]string{{"US", "San Francisco", "United States"}, {"DE", "Berlin", "Germany"}, {"GB", "London", "United Kingdom"}, {"BR", "São Paulo", "Brazil"}, {"JP", "Tokyo", "Japan"}, {"IN", "Bengaluru", "India"}}
	browsers  = []string{"Chrome 126.0.0", "Firefox 127.0", "Safari 17.5", "Edge 126.0.2592", "Mobile Safari 17.5"}
	oses      = []string{"Windows 10", "Mac OS X 14.5", "Linux", "iOS 17.5.1", "Android 14"}
	envs      = []string{"production", "production", "production", "staging"}
	routes    = []string{"/checkout", "/api/orders/{id}", "/cart", "/login", "/api/users/me", "/reports/monthly", "/search"}
)

const dateFormat = "2006-01-02T15:04:05Z"

// appendDate renders a whole-second instant.
func appendDate(b []byte, sec int64) []byte {
	return time.Unix(sec, 0).UTC().AppendFormat(b, dateFormat)
}

// appendDateTime renders a datetime as Sentry's API responses do (Django
// REST framework's JSONEncoder: datetime.isoformat() with "+00:00" replaced
// by "Z"): "2026-01-02T03:04:05Z" for a whole second, else six fractional
// digits, "2026-01-02T03:04:05.123000Z".
func appendDateTime(b []byte, t time.Time) []byte {
	t = t.UTC().Truncate(time.Microsecond)
	if t.Nanosecond() == 0 {
		return t.AppendFormat(b, dateFormat)
	}
	return t.AppendFormat(b, "2006-01-02T15:04:05.000000Z")
}

// appendEventTime renders an event's datetime, which prefers the
// millisecond timestamp_ms column (BaseEvent.datetime in
// src/sentry/services/eventstore/models.py).
func appendEventTime(b []byte, sec int64, ms uint16) []byte {
	return appendDateTime(b, time.Unix(sec, int64(ms)*int64(time.Millisecond)))
}

// appendEvent renders a SimpleEventSerializer row (full=false) or an
// EventSerializer row (full=true).
func appendEvent(b []byte, rc rowCtx, full bool) []byte {
	v := newEventView(rc)
	b = append(b, `{"id":"`...)
	b = append(b, v.id...)
	if full {
		return appendFullEvent(b, rc, v)
	}
	return appendSimpleEvent(b, rc, v)
}

// eventView holds the values both serializers derive from an event.
type eventView struct {
	id      string
	level   string
	title   string
	message string // scenario events: "" as in Sentry's schema example
	uid     string
	geo     [3]string
}

func newEventView(rc rowCtx) eventView {
	e, g := rc.e, rc.g
	return eventView{
		id:      hexID(e.id),
		level:   levels[e.level],
		title:   g.tpl.title(),
		message: e.msg,
		uid:     strconv.Itoa(int(1000 + e.seq%userPool)),
		geo:     countries[int(e.seq)%len(countries)],
	}
}

// appendSimpleEvent renders the rest of a SimpleEventSerializer row.
func appendSimpleEvent(b []byte, rc rowCtx, v eventView) []byte {
	e, g := rc.e, rc.g
	b = append(b, `","eventID":"`...)
	b = append(b, v.id...)
	b = append(b, `","event.type":"error","groupID":"`...)
	b = append(b, g.idStr...)
	b = append(b, `","projectID":"`...)
	b = append(b, rc.projectID...)
	b = append(b, `",`...)
	b = appendMessageTitle(b, v, g)
	b = append(b, `,"culprit":`...)
	b = appendNullableString(b, g.tpl.culprit)
	b = append(b, `,"user":`...)
	b = appendUser(b, v.uid, v.geo, e)
	b = append(b, `,"tags":`...)
	b = appendTags(b, rc, v.level, v.uid)
	b = append(b, `,"platform":"`...)
	b = append(b, rc.platform...)
	b = append(b, `","dateCreated":"`...)
	b = appendEventTime(b, e.ts, e.ms)
	b = append(b, `","crashFile":null,"metadata":`...)
	b = appendMetadata(b, g)
	b = append(b, '}')
	return b
}

// appendFullEvent renders the rest of an EventSerializer row.
func appendFullEvent(b []byte, rc rowCtx, v eventView) []byte {
	e, g := rc.e, rc.g
	b = append(b, `","groupID":"`...)
	b = append(b, g.idStr...)
	b = append(b, `","eventID":"`...)
	b = append(b, v.id...)
	b = append(b, `","projectID":"`...)
	b = append(b, rc.projectID...)
	b = append(b, `","size":`...)
	b = strconv.AppendInt(b, int64(4200+e.seq%9000), 10)
	b = appendEventEntries(b, rc)
	b = append(b, `,"dist":null,`...)
	b = appendMessageTitle(b, v, g)
	b = append(b, `,"user":`...)
	b = appendUser(b, v.uid, v.geo, e)
	b = append(b, `,"contexts":{"runtime":{"name":"`...)
	b = append(b, rc.platform...)
	b = append(b, `","type":"runtime"},"trace":{"trace_id":"`...)
	b = append(b, v.id[16:]...)
	b = append(b, v.id[:16]...)
	b = append(b, `","span_id":"`...)
	b = append(b, v.id[:16]...)
	b = append(b, `","op":"http.server","status":"internal_error","type":"trace"}},"sdk":{"name":"sentry.`...)
	b = append(b, rc.platform...)
	b = append(b, `","version":"2.8.0"},"context":{},"packages":{},"type":"error","metadata":`...)
	b = appendMetadata(b, g)
	b = append(b, `,"tags":`...)
	b = appendTags(b, rc, v.level, v.uid)
	b = append(b, `,"platform":"`...)
	b = append(b, rc.platform...)
	b = append(b, `","dateReceived":"`...)
	b = time.Unix(0, e.received).UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, `","errors":[],"occurrence":null,"_meta":{},"crashFile":null,"culprit":`...)
	b = appendNullableString(b, g.tpl.culprit)
	b = append(b, `,"dateCreated":"`...)
	b = appendEventTime(b, e.ts, e.ms)
	b = append(b, `","fingerprints":["`...)
	b = append(b, v.id[8:24]...)
	b = append(b, v.id[:16]...)
	b = append(b, `"],"groupingConfig":{"id":"newstyle:2023-01-11","enhancements":"KLUv_SAYwQAAkwORs25ld3N0eWxlOjIwMjMtMDEtMTGQ"}}`...)
	return b
}

// appendMessageTitle renders "message", "title" and "location", which
// both serializers write in this order.
func appendMessageTitle(b []byte, v eventView, g *group) []byte {
	b = append(b, `"message":`...)
	b = appendJSONString(b, v.message)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, v.title)
	b = append(b, `,"location":`...)
	return appendNullableString(b, g.tpl.location)
}

// appendEventEntries renders a full event's "entries": the exception with
// its stack trace, and one breadcrumb.
func appendEventEntries(b []byte, rc rowCtx) []byte {
	e, g := rc.e, rc.g
	b = append(b, `,"entries":[{"type":"exception","data":{"values":[{"type":`...)
	b = appendJSONString(b, g.tpl.excType)
	b = append(b, `,"value":`...)
	b = appendJSONString(b, g.tpl.value)
	b = append(b, `,"mechanism":{"type":`...)
	b = appendJSONString(b, g.tpl.mechanism)
	b = append(b, `,"handled":`...)
	b = strconv.AppendBool(b, g.tpl.handled)
	b = append(b, `},"stacktrace":{"frames":[{"filename":"runtime/main","function":"main","lineNo":12,"inApp":false},{"filename":`...)
	b = appendJSONString(b, g.tpl.location)
	b = append(b, `,"function":`...)
	b = appendJSONString(b, g.tpl.function)
	b = append(b, `,"lineNo":`...)
	b = strconv.AppendInt(b, int64(40+e.seq%200), 10)
	b = append(b, `,"inApp":true,"context":[]}],"framesOmitted":null,"registers":null,"hasSystemFrames":true}}],"hasSystemFrames":true,"excOmitted":null}},{"type":"breadcrumbs","data":{"values":[{"type":"http","category":"fetch","level":"info","message":null,"timestamp":"`...)
	b = time.Unix(e.ts-2, 0).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	return append(b, `","data":{"method":"GET","status_code":200,"url":"/api/session"}}]}}]`...)
}

func appendUser(b []byte, uid string, geo [3]string, e event) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, uid...)
	b = append(b, `","email":"user`...)
	b = append(b, uid...)
	b = append(b, `@example.com","username":null,"ip_address":"10.`...)
	b = strconv.AppendInt(b, int64(e.seq%250), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64((e.seq/7)%250), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64((e.seq/13)%250+1), 10)
	b = append(b, `","name":null,"geo":{"country_code":"`...)
	b = append(b, geo[0]...)
	b = append(b, `","city":`...)
	b = appendJSONString(b, geo[1])
	b = append(b, `,"region":`...)
	b = appendJSONString(b, geo[2])
	b = append(b, `},"data":null}`...)
	return b
}

func appendTags(b []byte, rc rowCtx, level, uid string) []byte {
	e, g := rc.e, rc.g
	tag := func(b []byte, k, v string, first bool) []byte {
		if !first {
			b = append(b, ',')
		}
		b = append(b, `{"key":"`...)
		b = append(b, k...)
		b = append(b, `","value":`...)
		b = appendJSONString(b, v)
		return append(b, '}')
	}
	b = append(b, '[')
	first := true
	if rc.platform == "javascript" {
		b = tag(b, "browser", browsers[int(e.seq)%len(browsers)], true)
		first = false
	}
	b = tag(b, "environment", envs[int(e.seq/3)%len(envs)], first)
	handled := "yes"
	if !g.tpl.handled {
		handled = "no"
	}
	b = tag(b, "handled", handled, false)
	b = tag(b, "level", level, false)
	if rc.platform == "javascript" {
		b = tag(b, "os", oses[int(e.seq/5)%len(oses)], false)
	}
	b = tag(b, "release", g.release, false)
	if rc.platform != "javascript" {
		b = tag(b, "server_name", "ip-10-0-"+strconv.Itoa(int(e.seq%16))+"-"+strconv.Itoa(int(e.seq%200)), false)
	}
	b = tag(b, "transaction", routes[int(e.seq/11)%len(routes)], false)
	b = append(b, `,{"key":"user","value":"id:`...)
	b = append(b, uid...)
	b = append(b, `","query":"user.id:\"`...)
	b = append(b, uid...)
	b = append(b, `\""}]`...)
	return b
}

func appendMetadata(b []byte, g *group) []byte {
	if g.tpl.excType == "" {
		b = append(b, `{"title":`...)
		b = appendJSONString(b, g.tpl.value)
		return append(b, '}')
	}
	b = append(b, `{"type":`...)
	b = appendJSONString(b, g.tpl.excType)
	b = append(b, `,"value":`...)
	b = appendJSONString(b, g.tpl.value)
	if g.tpl.location != "" {
		b = append(b, `,"filename":`...)
		b = appendJSONString(b, g.tpl.location)
		b = append(b, `,"function":`...)
		b = appendJSONString(b, g.tpl.function)
	}
	return append(b, '}')
}

func appendNullableString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, s)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
