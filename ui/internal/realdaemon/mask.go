package realdaemon

import (
	"regexp"
	"strings"
	"time"
)

// masks are the values of a real daemon's screen that change from run to
// run. Mask overwrites each with '#' of the same width, so that the layout
// of a golden file is the one the daemon's real values gave.
var masks = []*regexp.Regexp{
	// the random suffix of a test image's tag: clank-test/sampleapp:v1-3fa9c2d1,
	// whole, cut ("…") by a narrow column or wrapped after "clank-"
	regexp.MustCompile(`sampleapp:[A-Za-z0-9._]+-([0-9a-f]{1,8})`),
	// the same, its repository abbreviated from the left ("…pleapp:v3-3fa9c2d1",
	// ":v3-3fa9c2d1")
	regexp.MustCompile(`:v[0-9]+-([0-9a-f]{1,8})`),
	// an image digest, short (sha256:0123456789ab) or whole
	regexp.MustCompile(`sha256:([0-9a-f]{1,64})`),
	// a deployment id (d + 12 hex digits) and a short container id (12 hex
	// digits), not inside a longer hex string (a style's end, "…m", may
	// come right before)
	regexp.MustCompile(`(?:^|[^0-9a-f])(d[0-9a-f]{12})\b`),
	regexp.MustCompile(`(?:^|[^0-9a-f])([0-9a-f]{12})\b`),
	// a loopback port: the router's, a container's published one
	regexp.MustCompile(`127\.0\.0\.1:([0-9]+)`),
	// a timestamp (detail view) and a time of day (lifecycle lines)
	regexp.MustCompile(`([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2})Z`),
	regexp.MustCompile(`([0-9]{2}:[0-9]{2}:[0-9]{2})\b`),
	// the attempt on which a health check passed: how soon the app answers
	regexp.MustCompile(`attempt ([0-9]+) of`),
	// live CPU and memory (the services list's cell, the detail's usage
	// line), sampled or not yet ("-")
	regexp.MustCompile(`([ 0-9.]{5}[%-] [ 0-9.]{5}[BKMGTP-])`),
	regexp.MustCompile(`cpu ([ 0-9.]{5}[%-]) · memory`),
	regexp.MustCompile(`· memory ([ 0-9.]{5}[BKMGTP-])`),
}

// spark is a sparkline of the services list (ten cells, each in its own
// style) and the rate beside it, if shown: what the router counted, which
// depends on when the test looks.
var spark = regexp.MustCompile(`(?:(?:\x1b\[[0-9;]*m)?[▁▂▃▄▅▆▇█](?:\x1b\[m)?){10}` +
	`((?:\x1b\[[0-9;]*m)? [0-9.]+k?/s *(?:\x1b\[m)?)?`)

// Mask hides what changes between runs in a screen of a real daemon (see
// masks): image tag suffixes, digests, deployment and container ids,
// loopback ports, times and sparklines. Ages need no mask: the goldens'
// dashboard runs on a clock 3h ahead (ClockAhead), so every age reads "3h".
// Styles pass through, but a sparkline's.
func Mask(screen string) string {
	screen = spark.ReplaceAllStringFunc(screen, func(m string) string {
		rate := spark.FindStringSubmatch(m)[1]
		return "▁▁▁▁▁▁▁▁▁▁" + strings.Repeat("#", len(rate))
	})
	for _, re := range masks {
		screen = re.ReplaceAllStringFunc(screen, func(m string) string {
			sub := re.FindStringSubmatchIndex(m)
			return m[:sub[2]] + strings.Repeat("#", sub[3]-sub[2]) + m[sub[3]:]
		})
	}
	return screen
}

// ClockAhead is how far ahead of the real clock the goldens' dashboard
// runs: far enough that every deployment a test makes is "3h" old, however
// long the test takes (under an hour).
const ClockAhead = 3 * time.Hour

// Clock is the goldens' dashboard clock: now, ClockAhead ahead.
func Clock() time.Time { return time.Now().Add(ClockAhead) }
