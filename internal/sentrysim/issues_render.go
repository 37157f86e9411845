package sentrysim

import (
	"strconv"
	"time"
)

// Rendering a row of the issues endpoint (StreamGroupSerializerSnuba).

// appendIssue renders a StreamGroupSerializerSnuba row: the base group
// fields, count/userCount/firstSeen/lastSeen for the search window
// (_seen_stats_error with start=self.start, end=self.end; all zero or null
// when that query has no row for the group), "stats", "lifetime" (count and
// firstSeen are the group's own; lastSeen and userCount come from an
// unbounded seen-stats query, which the simulator answers over all of the
// group's events, expired ones included; its "stats" is always null) and
// "filtered" (null: no event-level conditions).
func appendIssue(b []byte, r *issueRow, base, org, statsPeriod string, st statsSpec) []byte {
	b = appendIssueGroup(b, r, base, org)
	b = append(b, `,"numComments":0,"assignedTo":`...)
	b = appendAssignee(b, r.assignee)
	b = append(b, `,"isBookmarked":false,"isSubscribed":false,"subscriptionDetails":null,"hasSeen":false,"annotations":[],"issueType":"error","issueCategory":"error","priority":"`...)
	b = append(b, r.priority...)
	b = append(b, `","priorityLockedAt":`...)
	if r.priorityLockedAt == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = appendDateTime(b, time.Unix(0, r.priorityLockedAt))
		b = append(b, '"')
	}
	b = append(b, `,"isUnhandled":`...)
	b = strconv.AppendBool(b, !r.g.tpl.handled)
	b = appendWindowSeen(b, r)
	if statsPeriod != "" {
		b = appendIssueStats(b, r, statsPeriod, st)
	}
	b = appendLifetime(b, r, statsPeriod != "")
	return append(b, `,"filtered":null}`...)
}

// appendIssueGroup renders the base group fields, from "id" to "metadata".
func appendIssueGroup(b []byte, r *issueRow, base, org string) []byte {
	g := r.g
	b = append(b, `{"id":"`...)
	b = append(b, g.idStr...)
	b = append(b, `","shareId":null,"shortId":`...)
	b = appendJSONString(b, g.shortID)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, g.tpl.title())
	b = append(b, `,"culprit":`...)
	b = appendNullableString(b, g.tpl.culprit)
	b = append(b, `,"permalink":`...)
	b = appendJSONString(b, base+"/organizations/"+org+"/issues/"+g.idStr+"/")
	b = append(b, `,"logger":null,"level":"`...)
	b = append(b, levels[r.level]...)
	b = append(b, `","status":"`...)
	b = append(b, r.status...)
	b = append(b, `","statusDetails":{},"substatus":`...)
	b = appendNullableString(b, r.substatus)
	b = append(b, `,"isPublic":false,"platform":"`...)
	b = append(b, r.platform...)
	b = append(b, `","project":{"id":"`...)
	b = append(b, r.projectID...)
	b = append(b, `","name":`...)
	b = appendJSONString(b, r.projectName)
	b = append(b, `,"slug":`...)
	b = appendJSONString(b, r.projectSlug)
	b = append(b, `,"platform":"`...)
	b = append(b, r.platform...)
	b = append(b, `"},"type":"error","metadata":`...)
	return appendMetadata(b, g)
}

// appendAssignee renders assignedTo: null, or the user.
func appendAssignee(b []byte, userID string) []byte {
	if userID == "" {
		return append(b, "null"...)
	}
	b = append(b, `{"type":"user","id":`...)
	b = appendJSONString(b, userID)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, "user"+userID)
	b = append(b, `,"email":`...)
	b = appendJSONString(b, "user"+userID+"@example.com")
	return append(b, '}')
}

// appendWindowSeen renders count, userCount, firstSeen and lastSeen of the
// search window: zero and null when the seen-stats query has no row.
func appendWindowSeen(b []byte, r *issueRow) []byte {
	if r.missing {
		return append(b, `,"count":"0","userCount":0,"firstSeen":null,"lastSeen":null`...)
	}
	b = append(b, `,"count":"`...)
	b = strconv.AppendInt(b, r.win.count, 10)
	b = append(b, `","userCount":`...)
	b = strconv.AppendInt(b, r.win.userCount, 10)
	b = append(b, `,"firstSeen":"`...)
	b = appendDate(b, r.win.first)
	b = append(b, `","lastSeen":"`...)
	b = appendDate(b, r.win.last)
	return append(b, '"')
}

// appendIssueStats renders "stats": [bucket start, count] pairs under the
// groupStatsPeriod.
func appendIssueStats(b []byte, r *issueRow, statsPeriod string, st statsSpec) []byte {
	b = append(b, `,"stats":{"`...)
	b = append(b, statsPeriod...)
	b = append(b, `":[`...)
	for i, ts := range st.series {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, ts, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, r.series[i], 10)
		b = append(b, ']')
	}
	return append(b, "]}"...)
}

// appendLifetime renders "lifetime", whose "stats" is null when the row
// has stats.
func appendLifetime(b []byte, r *issueRow, withStats bool) []byte {
	b = append(b, `,"lifetime":{"count":"`...)
	b = strconv.AppendInt(b, r.lifeCount, 10)
	b = append(b, `","userCount":`...)
	b = strconv.AppendInt(b, r.lifeUsers, 10)
	b = append(b, `,"firstSeen":"`...)
	b = appendEventTime(b, r.lifeFirst, r.lifeFirstMs)
	b = append(b, `","lastSeen":"`...)
	b = appendDate(b, r.lifeLast)
	b = append(b, '"')
	if withStats {
		b = append(b, `,"stats":null`...)
	}
	return append(b, '}')
}
