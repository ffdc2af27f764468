package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/store"
)

// logTail is how many lines of each container's log a reader gets before
// the followed ones.
const logTail = 500

// Logs copies deployment d's logs to w: the last lines of each of its
// containers, then, with follow, more as they are written, each line with
// its time first if timestamps. With more than one replica, each line says
// whose it is ("replica 1 | ", after the time, so that a reader that strips
// times still finds it), and the lines written before the call come in time
// order. On Swarm, every task's, as Docker's service logs give them.
func (e *Engine) Logs(ctx context.Context, d store.Deployment, follow, timestamps bool, w io.Writer) error {
	opts := LogOptions{Follow: follow, Tail: logTail, Timestamps: timestamps}
	if e.swarm != nil {
		return e.swarm.ServiceLogs(ctx, SwarmServiceName(d), opts, w)
	}
	if len(d.Containers) <= 1 {
		return e.rt.Logs(ctx, d.ContainerID, opts, w)
	}
	return e.replicaLogs(ctx, d.Containers, follow, timestamps, w)
}

// logLine is one line of a replica's log.
type logLine struct {
	at    time.Time // zero if the line had no time
	stamp string    // the time as Docker wrote it, "" if none
	slot  int
	text  string // after the time, with its newline
}

// parseLogLine splits a line that Docker wrote with its time, as the
// dashboard's log viewer does (api.SplitLogTimestamp).
func parseLogLine(slot int, line string) logLine {
	at, rest, ok := api.SplitLogTimestamp(line)
	if !ok {
		return logLine{slot: slot, text: line}
	}
	return logLine{at: at, stamp: line[:len(line)-len(rest)-1], slot: slot, text: rest}
}

// format is the line as a reader of several replicas gets it.
func (l logLine) format(timestamps bool) string {
	text := l.text
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	prefix := fmt.Sprintf("replica %d | ", l.slot)
	if timestamps && l.stamp != "" {
		return l.stamp + " " + prefix + text
	}
	return prefix + text
}

// replicaLogs is Logs for the containers of several replicas: their last
// lines merged in time order, then each one's new lines as they come. A
// replica's follow starts at the time of its last line read, and the lines
// of that very time read already are not given twice.
func (e *Engine) replicaLogs(ctx context.Context, rs []store.Replica, follow, timestamps bool, w io.Writer) error {
	var lines []logLine
	type resume struct {
		since time.Time
		seen  map[string]int // lines of that time given already
	}
	from := make([]resume, len(rs))
	for i, r := range rs {
		start := time.Now()
		var buf bytes.Buffer
		if err := e.rt.Logs(ctx, r.ContainerID, LogOptions{Tail: logTail, Timestamps: true}, &buf); err != nil {
			return fmt.Errorf("replica %d: %w", r.Slot, err)
		}
		since, seen, got := start, map[string]int{}, false
		for line := range strings.Lines(buf.String()) {
			l := parseLogLine(r.Slot, line)
			lines = append(lines, l)
			switch {
			case l.at.IsZero():
			case !got || l.at.After(since):
				since, seen, got = l.at, map[string]int{l.text: 1}, true
			case l.at.Equal(since):
				seen[l.text]++
			}
		}
		from[i] = resume{since: since, seen: seen}
	}
	slices.SortStableFunc(lines, func(a, b logLine) int { return a.at.Compare(b.at) })
	var out strings.Builder
	for _, l := range lines {
		out.WriteString(l.format(timestamps))
	}
	if _, err := io.WriteString(w, out.String()); err != nil || !follow {
		return err
	}

	var (
		mu    sync.Mutex // one line at a time on w
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for i, r := range rs {
		lw := &lineWriter{emit: func(line string) {
			l := parseLogLine(r.Slot, line)
			if !l.at.IsZero() {
				if l.at.Before(from[i].since) {
					return
				}
				if l.at.Equal(from[i].since) && from[i].seen[l.text] > 0 {
					from[i].seen[l.text]--
					return
				}
			}
			mu.Lock()
			defer mu.Unlock()
			io.WriteString(w, l.format(timestamps))
		}}
		wg.Go(func() {
			err := e.rt.Logs(ctx, r.ContainerID, LogOptions{Follow: true, Timestamps: true, Since: from[i].since}, lw)
			lw.flush()
			if err != nil && ctx.Err() == nil {
				errMu.Lock()
				if first == nil {
					first = fmt.Errorf("replica %d: %w", r.Slot, err)
				}
				errMu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// lineWriter hands each whole line written to it to emit.
type lineWriter struct {
	buf  []byte
	emit func(line string)
}

func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.buf = append(lw.buf, p...)
	for {
		i := bytes.IndexByte(lw.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		lw.emit(string(lw.buf[:i+1]))
		lw.buf = lw.buf[i+1:]
	}
}

// flush hands on a last line that has no newline.
func (lw *lineWriter) flush() {
	if len(lw.buf) > 0 {
		lw.emit(string(lw.buf))
		lw.buf = nil
	}
}
