// Package cli is Clank's command line: the cobra commands of README.md and
// the exit codes they end with. Client commands talk to the daemon over its
// unix socket through api.Client.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/certs"
	"github.com/clank-dev/clank/daemon"
	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/store"
)

// Exit codes (README.md, "Command line").
const (
	ExitOK      = 0
	ExitRefused = 1 // refused, or the deployment failed
	ExitUsage   = 2
)

// usageError is bad usage: exit code 2.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// ExitCode maps an error from Execute to the process exit code, in one place.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	var re *api.RemoteError
	if errors.As(err, &re) && re.Code == "invalid" {
		return ExitUsage
	}
	// cobra's own usage errors are plain errors.
	for _, p := range []string{"unknown command", "required flag", "unknown flag", "unknown shorthand"} {
		if strings.HasPrefix(err.Error(), p) {
			return ExitUsage
		}
	}
	return ExitRefused
}

// settings are the daemon settings every command may need.
type settings struct {
	dataDir, socket, httpAddr, sshAddr, registryAddr string
	httpsAddr, acmeCA, acmeEmail                     string
	runtime                                          string // docker | swarm
	keepImages, keepEvents, keepLogs                 int
	keepLogsSize                                     string
	notify                                           []string // receivers of notifications
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envInt(key string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(key)); err == nil {
		return n
	}
	return def
}

func defaultDataDir() string {
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "clank")
}

func (s *settings) socketPath() string {
	if s.socket != "" {
		return s.socket
	}
	return filepath.Join(s.dataDir, "clank.sock")
}

func (s *settings) client() *api.Client { return api.NewClient(s.socketPath()) }

// actor is who runs this CLI, as the dashboard's header shows it; the
// daemon records the same from the socket's peer (daemon/roles.go).
func actor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return name + " (cli)"
}

// NewRoot builds the whole command tree.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	s := &settings{}
	root := &cobra.Command{
		Use:           "clank",
		Short:         "Deploy, redeploy and roll back services on Docker, with zero failed requests",
		Long:          "Clank runs services as Docker containers behind its own edge router. Every deployment\nis an immutable snapshot; a rollback starts a new deployment from an earlier one.\n\nRun without a command, clank opens the dashboard (starting the daemon in-process unless\none already answers on the socket).",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDashboard(cmd.Context(), s, stdout, stderr)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&s.dataDir, "data-dir", env("CLANK_DATA_DIR", defaultDataDir()), "where Clank keeps its state (CLANK_DATA_DIR)")
	pf.StringVar(&s.socket, "socket", env("CLANK_SOCKET", ""), "the daemon's API socket (CLANK_SOCKET; default <data-dir>/clank.sock)")
	pf.StringVar(&s.httpAddr, "http-addr", env("CLANK_HTTP_ADDR", "127.0.0.1:8080"), "the edge router's address (CLANK_HTTP_ADDR)")
	pf.StringVar(&s.httpsAddr, "https-addr", env("CLANK_HTTPS_ADDR", ""), "the edge router's HTTPS address, with certificates from ACME; \"\" for none (CLANK_HTTPS_ADDR)")
	pf.StringVar(&s.acmeCA, "acme-ca", env("CLANK_ACME_CA", certs.DefaultCA), "the ACME directory URL certificates come from (CLANK_ACME_CA)")
	pf.StringVar(&s.acmeEmail, "acme-email", env("CLANK_ACME_EMAIL", ""), "the contact of the ACME account: the CA writes there about expiring certificates (CLANK_ACME_EMAIL)")
	pf.StringVar(&s.sshAddr, "ssh-addr", env("CLANK_SSH_ADDR", "127.0.0.1:2222"), "the SSH dashboard's address, \"\" for none (CLANK_SSH_ADDR)")
	pf.IntVar(&s.keepEvents, "keep-events", envInt("CLANK_KEEP_EVENTS", store.DefaultKeepEvents), "lifecycle events kept per service, the newest; -1 for all (CLANK_KEEP_EVENTS)")
	pf.IntVar(&s.keepLogs, "keep-logs", envInt("CLANK_KEEP_LOGS", store.DefaultKeepLogLines), "lines of a removed container's log kept per deployment, the last ones; 0 for none (CLANK_KEEP_LOGS)")
	pf.StringVar(&s.keepLogsSize, "keep-logs-size", env("CLANK_KEEP_LOGS_SIZE", "256KiB"), "bytes of a removed container's log kept per deployment, like 256KiB or 1MiB (CLANK_KEEP_LOGS_SIZE)")
	pf.IntVar(&s.keepImages, "keep-images", envInt("CLANK_KEEP_IMAGES", engine.DefaultKeepImages), "local images kept per service after each deploy, -1 for all (CLANK_KEEP_IMAGES)")
	pf.StringVar(&s.registryAddr, "registry-addr", env("CLANK_REGISTRY_ADDR", "127.0.0.1:5000"), "the Clank registry's address, \"\" for none (CLANK_REGISTRY_ADDR)")
	pf.StringVar(&s.runtime, "runtime", env("CLANK_RUNTIME", daemon.RuntimeDocker), "what deployments run on: docker (containers on this engine) or swarm (Swarm services; the engine must be a Swarm manager) (CLANK_RUNTIME)")
	pf.StringArrayVar(&s.notify, "notify", nil, "a URL that gets a JSON POST for each deployment that ends, watch trip, automatic rollback and crash (repeatable; CLANK_NOTIFY, comma- or space-separated)")

	root.AddCommand(
		serveCmd(s),
		demoCmd(s),
		serviceCmd(s),
		envCmd(s),
		deployCmd(s), redeployCmd(s), rollbackCmd(s),
		unfreezeCmd(s),
		scaleCmd(s),
		servicesCmd(s),
		deploymentsCmd(s),
		logsCmd(s),
		pruneCmd(s),
		registryCmd(s),
		certsCmd(s),
		nodesCmd(s),
		sampleAppCmd(),
	)
	for _, c := range root.Commands() {
		wrapArgs(c)
	}
	return root
}

// wrapArgs makes argument-count errors usage errors (exit 2) everywhere, and
// a group (service, env, registry) called without a subcommand bad usage too.
func wrapArgs(c *cobra.Command) {
	if c.HasSubCommands() && c.RunE == nil && c.Run == nil {
		c.RunE = func(cmd *cobra.Command, _ []string) error {
			names := []string{}
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() {
					names = append(names, sub.Name())
				}
			}
			return usagef("%s needs a subcommand: %s", cmd.CommandPath(), strings.Join(names, ", "))
		}
	}
	if c.Args != nil {
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

// Main runs the command line and returns the exit code.
func Main(ctx context.Context, args []string) int {
	root := NewRoot(os.Stdout, os.Stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clank:", err)
	}
	return ExitCode(err)
}
