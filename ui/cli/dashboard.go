package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/charmbracelet/x/term"

	"github.com/clank-dev/clank/ui"
)

// runDashboard opens the dashboard against the daemon on the socket, or
// starts one in-process when none answers.
func runDashboard(ctx context.Context, s *settings, out, _ io.Writer) error {
	ctx, stop := signalContext(ctx)
	defer stop()
	if _, err := s.client().Status(ctx); err == nil {
		return runUI(ctx, s, out, nil)
	}
	logFile, err := openLog(s.dataDir)
	if err != nil {
		return err
	}
	defer logFile.Close()
	r, err := startDaemon(ctx, s, slog.New(slog.NewTextHandler(logFile, nil)))
	if err != nil {
		return err
	}
	defer r.close()
	if !isTerminal(out) {
		printWhere(out, r.d)
	}
	return runUI(ctx, s, out, nil)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}

// runUI runs the dashboard against the daemon on the socket until the user
// quits or ctx ends, with banner above its panes until the first key.
// Without a terminal it waits for ctx instead.
func runUI(ctx context.Context, s *settings, out io.Writer, banner []string) error {
	if !isTerminal(out) {
		fmt.Fprintln(out, "no terminal for the dashboard: serving until interrupted (Ctrl-C)")
		<-ctx.Done()
		return nil
	}
	host, _ := os.Hostname()
	err := ui.Run(ctx, s.client(), ui.Options{Role: ui.RoleAdmin, Actor: actor(), Host: host, Banner: banner})
	if ctx.Err() != nil {
		return nil // interrupted: not an error
	}
	return err
}
