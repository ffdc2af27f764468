package api

import (
	"strings"
	"time"
)

// KeptLogPrefix begins the line that heads, in a logs stream, the log kept
// from a removed container (the container is gone; the daemon kept the tail
// of its log when it removed it).
const KeptLogPrefix = "-- kept from removed container "

// keptTimeLayout is how a kept log's header says when its container went.
const keptTimeLayout = "2006-01-02 15:04:05 UTC"

// KeptLogHeader is the line (without its newline) that heads the log kept
// from container id, removed at removed; cut says older output was dropped
// to keep within the daemon's bounds.
func KeptLogHeader(id string, removed time.Time, cut bool) string {
	if len(id) > 12 {
		id = id[:12]
	}
	s := KeptLogPrefix + id + ", removed " + removed.UTC().Format(keptTimeLayout)
	if cut {
		s += "; older output was not kept"
	}
	return s + " --"
}

// ParseKeptLogHeader reads a line KeptLogHeader made: the container's short
// id and when it was removed.
func ParseKeptLogHeader(line string) (id string, removed time.Time, ok bool) {
	rest, found := strings.CutPrefix(line, KeptLogPrefix)
	if !found {
		return "", time.Time{}, false
	}
	id, rest, found = strings.Cut(rest, ", removed ")
	if !found || len(rest) < len(keptTimeLayout) {
		return "", time.Time{}, false
	}
	removed, err := time.Parse(keptTimeLayout, rest[:len(keptTimeLayout)])
	if err != nil {
		return "", time.Time{}, false
	}
	return id, removed, true
}

// LogOptions choose what a logs stream holds.
type LogOptions struct {
	Follow     bool // keep the stream open for new lines (a live container's)
	Timestamps bool // each line begins with its time (RFC 3339) and a space
}

// SplitLogTimestamp takes the time off the front of a line of a stream asked
// for with timestamps; ok is false when the line has none (a kept log's
// header, a line cut by the bounds).
func SplitLogTimestamp(line string) (at time.Time, rest string, ok bool) {
	ts, rest, found := strings.Cut(line, " ")
	if !found || len(ts) < len("2006-01-02T15:04:05Z") || ts[4] != '-' {
		return time.Time{}, line, false
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, line, false
	}
	return at, rest, true
}
