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
