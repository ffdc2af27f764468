package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/daemon"
	"github.com/clank-dev/clank/internal/sampleapp"
	uissh "github.com/clank-dev/clank/ui/ssh"
)

func (s *settings) daemonConfig(logger *slog.Logger) (daemon.Config, error) {
	notify := s.notify
	if len(notify) == 0 {
		notify = []string{os.Getenv("CLANK_NOTIFY")}
	}
	urls, err := daemon.ParseNotifyURLs(notify...)
	if err != nil {
		return daemon.Config{}, usageError{err}
	}
	logLines, logBytes, err := s.logBounds()
	if err != nil {
		return daemon.Config{}, err
	}
	if s.runtime != daemon.RuntimeDocker && s.runtime != daemon.RuntimeSwarm {
		return daemon.Config{}, usagef("--runtime %q: want %s or %s", s.runtime, daemon.RuntimeDocker, daemon.RuntimeSwarm)
	}
	return daemon.Config{
		KeepLogLines: logLines, KeepLogBytes: logBytes,
		DataDir: s.dataDir, Socket: s.socket, HTTPAddr: s.httpAddr,
		HTTPSAddr: s.httpsAddr, ACMECA: s.acmeCA, ACMEEmail: s.acmeEmail,
		SSHAddr: s.sshAddr, RegistryAddr: s.registryAddr, KeepImages: s.keepImages, KeepEvents: s.keepEvents,
		Notify: urls, Runtime: s.runtime, Logger: logger,
	}, nil
}

// logBounds reads --keep-logs and --keep-logs-size as the daemon takes
// them (-1 lines keeps none).
func (s *settings) logBounds() (lines, size int, err error) {
	switch {
	case s.keepLogs < 0:
		return 0, 0, usagef("invalid --keep-logs %d: want a number of lines, 0 for none", s.keepLogs)
	case s.keepLogs == 0:
		lines = -1
	default:
		lines = s.keepLogs
	}
	n, perr := units.RAMInBytes(s.keepLogsSize)
	if perr != nil || n < 1<<10 || n > maxKeepLogsSize {
		return 0, 0, usagef("invalid --keep-logs-size %q: want a size from 1KiB to 64MiB, like 256KiB", s.keepLogsSize)
	}
	return lines, int(n), nil
}

// maxKeepLogsSize bounds --keep-logs-size: the store holds it per deployment.
const maxKeepLogsSize = 64 << 20

// signalContext ends on SIGINT or SIGTERM.
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

func serveCmd(s *settings) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon alone: edge router, registry, SSH dashboard, API socket",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			r, err := startDaemon(ctx, s, logger)
			if err != nil {
				return err
			}
			printWhere(cmd.OutOrStdout(), r.d)
			<-ctx.Done()
			logger.Info("stopping")
			r.close()
			return nil
		},
	}
}

// running is a daemon and its SSH dashboard.
type running struct {
	d   *daemon.Daemon
	ssh *uissh.Server
}

// startDaemon starts the daemon and, unless --ssh-addr is "", the SSH
// dashboard, whose sessions talk to the daemon through its socket.
func startDaemon(ctx context.Context, s *settings, logger *slog.Logger) (*running, error) {
	cfg, err := s.daemonConfig(logger)
	if err != nil {
		return nil, err
	}
	d, err := daemon.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r := &running{d: d}
	if s.sshAddr != "" {
		host, _ := os.Hostname()
		var ln net.Listener
		c := api.NewClient(d.Socket())
		r.ssh, err = uissh.NewServer(uissh.ServerOptions{Addr: s.sshAddr, DataDir: s.dataDir, Backend: c, Git: c, Host: host, Logger: logger.With("part", "ssh")})
		if err == nil {
			ln, err = net.Listen("tcp", s.sshAddr)
		}
		if err != nil {
			d.Close(context.Background())
			return nil, fmt.Errorf("SSH dashboard on %s: %w", s.sshAddr, err)
		}
		d.SetSSHAddr(ln.Addr().String())
		go r.ssh.Serve(ln)
	}
	return r, nil
}

func (r *running) close() {
	if r.ssh != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r.ssh.Shutdown(ctx)
		cancel()
	}
	r.d.Close(context.Background())
}

func printWhere(out io.Writer, d *daemon.Daemon) {
	fmt.Fprintf(out, "clank daemon: API on %s, edge router on http://%s\n", d.Socket(), d.RouterAddr())
	if addr := d.HTTPSAddr(); addr != "" {
		fmt.Fprintf(out, "edge router on https://%s (certificates from %s for every domain a deployment serves)\n", addr, d.ACMECA())
	}
	st := d.Status(context.Background())
	if st.Registry != "off" {
		fmt.Fprintf(out, "Clank registry on %s (clank registry login, then docker push %s/NAME:TAG)\n", st.Registry, st.Registry)
	}
	if host, port, err := net.SplitHostPort(st.SSH); err == nil {
		fmt.Fprintf(out, "SSH dashboard and git push on %s (ssh -p %s %s; git push ssh://git@%s/SERVICE main)\n", st.SSH, port, host, st.SSH)
	}
	if st.Docker != "ok" {
		fmt.Fprintf(out, "warning: %s\n", st.Docker)
	}
}

func demoCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a daemon with demo services built locally, plus the dashboard",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("data-dir") && os.Getenv("CLANK_DATA_DIR") == "" {
				s.dataDir = s.dataDir + "-demo"
			}
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			out := cmd.OutOrStdout()
			logFile, err := openLog(s.dataDir)
			if err != nil {
				return err
			}
			defer logFile.Close()
			logger := slog.New(slog.NewTextHandler(logFile, nil))
			r, err := startDaemon(ctx, s, logger)
			if err != nil {
				return err
			}
			defer r.close()
			// The demo's containers go when it ends; its data stays, and the
			// next `clank demo` starts the ACTIVE deployments again.
			defer func() {
				fmt.Fprintln(out, "stopping the demo's containers...")
				if err := r.d.Engine.StopAll(context.Background()); err != nil {
					fmt.Fprintf(out, "stop the demo's containers: %v\n", err)
				}
			}()
			fmt.Fprintf(out, "clank demo: data in %s, log in %s\n", s.dataDir, logFile.Name())
			if err := r.d.SetUpDemo(ctx, out); err != nil {
				return err
			}
			hints := demoHints(r.d)
			if !isTerminal(out) {
				// No dashboard to show them in: said here.
				fmt.Fprintln(out, "\n"+strings.Join(hints, "\n")+"\n")
			}
			if s.socket == "" {
				s.socket = r.d.Socket()
			}
			return runUI(ctx, s, out, hints)
		},
	}
	return cmd
}

// demoHints say what to try with the demo: the dashboard shows them as its
// first-run banner (printed instead when there is no terminal).
func demoHints(d *daemon.Daemon) []string {
	var curls []string
	for _, name := range daemon.DemoServices() {
		curls = append(curls, fmt.Sprintf("curl -H 'Host: %s.localhost' http://%s/", name, d.RouterAddr()))
	}
	return []string{
		"Welcome to the clank demo: its services answer through the edge router on " + d.RouterAddr() + ":",
		"  " + strings.Join(curls, "   "),
		"Here: select web, enter, then r to roll it back (y confirms) and watch the lifecycle; ? lists every key.",
		"In another terminal: export CLANK_SOCKET=" + d.Socket() + "; clank deployments --service web; clank rollback --service web --dry-run",
	}
}

func openLog(dataDir string) (*os.File, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	return os.OpenFile(dataDir+"/clank.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
}

func sampleAppCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "sampleapp",
		Short:              "The demo's sample HTTP app (runs inside the demo containers)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return sampleapp.Main(args)
		},
	}
}
