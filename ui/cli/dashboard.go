package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/clank-dev/clank/daemon"
)

// runDashboard opens the dashboard against the daemon on the socket, or
// starts one in-process when none answers.
func runDashboard(ctx context.Context, s *settings, out, _ io.Writer) error {
	ctx, stop := signalContext(ctx)
	defer stop()
	if _, err := s.client().Status(ctx); err == nil {
		return runUI(ctx, s, nil, out)
	}
	logFile, err := openLog(s.dataDir)
	if err != nil {
		return err
	}
	defer logFile.Close()
	d, err := daemon.Start(ctx, s.daemonConfig(slog.New(slog.NewTextHandler(logFile, nil))))
	if err != nil {
		return err
	}
	defer d.Close(context.Background())
	printWhere(out, d)
	return runUI(ctx, s, d, out)
}

// runUI runs the dashboard until the user quits or ctx ends.
func runUI(ctx context.Context, s *settings, d *daemon.Daemon, out io.Writer) error {
	fmt.Fprintln(out, "press Ctrl-C to stop")
	<-ctx.Done()
	return nil
}
