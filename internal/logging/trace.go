package logging

import (
	"log/slog"
	"strconv"
	"strings"
)

// TraceAttrs returns the Cloud Logging trace attributes for a request, from
// its X-Cloud-Trace-Context header ("TRACE_ID/SPAN_ID;o=OPTIONS") or, when
// that is absent, its W3C traceparent header ("00-TRACE_ID-SPAN_ID-FLAGS"):
// logging.googleapis.com/trace = "projects/<projectID>/traces/<TRACE_ID>",
// and logging.googleapis.com/spanId and trace_sampled when known.
//
// It returns nil when projectID is empty (Cloud Logging needs the full
// resource name) or when neither header carries a well-formed trace id.
func TraceAttrs(projectID, cloudTraceContext, traceparent string) []slog.Attr {
	if projectID == "" {
		return nil
	}
	traceID, spanID, sampled, ok := parseCloudTraceContext(cloudTraceContext)
	if !ok {
		traceID, spanID, sampled, ok = parseTraceparent(traceparent)
	}
	if !ok {
		return nil
	}
	attrs := []slog.Attr{slog.String(KeyTrace, "projects/"+projectID+"/traces/"+traceID)}
	if spanID != "" {
		attrs = append(attrs, slog.String(KeySpanID, spanID))
	}
	if sampled {
		attrs = append(attrs, slog.Bool(KeyTraceSampled, true))
	}
	return attrs
}

// parseCloudTraceContext parses "TRACE_ID[/SPAN_ID][;o=OPTIONS]". The span id
// is decimal in this header; Cloud Logging wants it as 16 hex digits.
func parseCloudTraceContext(h string) (traceID, spanID string, sampled, ok bool) {
	h = strings.TrimSpace(h)
	rest, opts, _ := strings.Cut(h, ";")
	traceID, span, hasSpan := strings.Cut(rest, "/")
	if !isHex(traceID, 32) {
		return "", "", false, false
	}
	traceID = strings.ToLower(traceID)
	if hasSpan {
		if n, err := strconv.ParseUint(span, 10, 64); err == nil && n != 0 {
			spanID = strconv.FormatUint(n, 16)
			spanID = strings.Repeat("0", 16-len(spanID)) + spanID
		}
	}
	return traceID, spanID, strings.TrimSpace(opts) == "o=1", true
}

// parseTraceparent parses a W3C traceparent "VERSION-TRACE_ID-SPAN_ID-FLAGS".
func parseTraceparent(h string) (traceID, spanID string, sampled, ok bool) {
	parts := strings.Split(strings.TrimSpace(h), "-")
	if len(parts) < 4 || !isHex(parts[0], 2) || !isHex(parts[1], 32) || !isHex(parts[2], 16) || !isHex(parts[3], 2) {
		return "", "", false, false
	}
	if strings.Trim(parts[1], "0") == "" {
		return "", "", false, false
	}
	flags, _ := strconv.ParseUint(parts[3], 16, 8)
	return strings.ToLower(parts[1]), strings.ToLower(parts[2]), flags&1 == 1, true
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
