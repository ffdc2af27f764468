package registry

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/sirupsen/logrus"
)

// distribution logs through logrus's standard logger, a process-wide value it
// gives no way to replace per App. Clank silences that logger's own output once
// and forwards its entries to one slog.Logger (discarding by default), with
// client errors (a 404 for an unknown manifest, a 401) demoted to debug: they
// are answers, not faults.
var (
	logrusOnce sync.Once
	logTarget  atomic.Pointer[slog.Logger]
)

func init() {
	logTarget.Store(slog.New(slog.DiscardHandler))
}

// SetLogger sends the embedded registry's log to l (process-wide, because
// distribution logs through one global logger). nil discards it again.
func SetLogger(l *slog.Logger) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	logTarget.Store(l)
}

func quietLogrus() {
	logrusOnce.Do(func() {
		std := logrus.StandardLogger()
		std.SetOutput(io.Discard)
		// Info entries are one per request ("response completed"): skip them
		// before they are formatted.
		std.SetLevel(logrus.WarnLevel)
		std.AddHook(slogHook{})
	})
}

// slogHook forwards logrus entries to the slog target.
type slogHook struct{}

func (slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (slogHook) Fire(e *logrus.Entry) error {
	level := slog.LevelDebug
	switch e.Level {
	case logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel:
		level = slog.LevelError
		if clientError(e.Data["err.code"]) {
			level = slog.LevelDebug
		}
	case logrus.WarnLevel:
		level = slog.LevelWarn
	}
	l := logTarget.Load()
	ctx := context.Background()
	if !l.Enabled(ctx, level) {
		return nil
	}
	attrs := make([]slog.Attr, 0, len(e.Data)+1)
	attrs = append(attrs, slog.String("component", "registry"))
	for k, v := range e.Data {
		attrs = append(attrs, slog.Any(k, v))
	}
	l.LogAttrs(ctx, level, e.Message, attrs...)
	return nil
}

// clientError reports whether an error code logged with a response is a 4xx.
func clientError(code any) bool {
	c, ok := code.(errcode.ErrorCode)
	if !ok {
		return false
	}
	return c.Descriptor().HTTPStatusCode < 500
}
