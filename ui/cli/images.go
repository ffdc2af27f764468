package cli

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/clank-dev/clank/engine"
)

func pruneCmd(s *settings) *cobra.Command {
	var keep int
	var service, output string
	cmd := &cobra.Command{
		Use:   "prune [--keep N] [--service NAME]",
		Short: "Remove the local images of deployments beyond the last N that were ACTIVE per service",
		Long: "Remove the local images of deployments beyond the last N that were ACTIVE per service,\n" +
			"never the current one's. Local-only images pruned this way can no longer be rolled back\n" +
			"to; images in a registry keep their badge and are pulled again on rollback.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			pruned, err := s.client().Prune(cmd.Context(), service, keep)
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), pruned)
			}
			if len(pruned) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "nothing to prune")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SERVICE\t#\tIMAGE\tDIGEST\tSOURCE\tRESULT")
			for _, p := range pruned {
				result := "removed"
				if p.Error != "" {
					result = "kept: " + p.Error
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", p.Service, p.Deployment, p.Image, engine.ShortDigest(p.ImageDigest), p.ImageSource, result)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&keep, "keep", engine.DefaultKeepImages, "how many recently ACTIVE deployments per service keep their images")
	cmd.Flags().StringVar(&service, "service", "", "only this service")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	return cmd
}

func registryCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{Use: "registry", Short: "The embedded Clank registry", Args: cobra.NoArgs}
	gc := &cobra.Command{
		Use:   "gc",
		Short: "Garbage-collect the Clank registry, keeping every image a deployment recorded",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := s.client().RegistryGC(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, m := range res.ManifestsRemoved {
				fmt.Fprintf(out, "removed %s\n", m)
			}
			fmt.Fprintf(out, "%d manifest(s) removed, %d kept, %d blob(s) deleted in %.1fs\n", len(res.ManifestsRemoved), res.ManifestsKept, res.BlobsRemoved, res.Seconds)
			return nil
		},
	}
	cmd.AddCommand(gc, registryLoginCmd(s))
	return cmd
}

// registryLoginCmd logs the local Docker CLI in to the Clank registry with
// the credential the daemon generated, through `docker login
// --password-stdin` so that the password is never on a command line.
func registryLoginCmd(s *settings) *cobra.Command {
	var server string
	var printPassword bool
	cmd := &cobra.Command{
		Use:   "login [--server HOST:PORT] [--print-password]",
		Short: "Log the local Docker CLI in to the Clank registry, so that docker push works",
		Long: "Log the local Docker CLI in to the Clank registry with the credential the daemon keeps in\n" +
			"its data dir: pushes and deletes need it, pulls from this machine do not. --server logs in\n" +
			"under another name for the registry (the address other machines use); --print-password\n" +
			"prints the password instead, for a Docker CLI elsewhere (docker login -u clank --password-stdin).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cred, err := s.client().RegistryCredential(cmd.Context())
			if err != nil {
				return err
			}
			if printPassword {
				fmt.Fprintln(cmd.OutOrStdout(), cred.Password)
				return nil
			}
			if server == "" {
				server = cred.Registry
			}
			login := exec.CommandContext(cmd.Context(), "docker", "login", "--username", cred.Username, "--password-stdin", server)
			login.Stdin = strings.NewReader(cred.Password)
			login.Stdout, login.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := login.Run(); err != nil {
				if errors.Is(err, exec.ErrNotFound) {
					return fmt.Errorf("clank registry login needs the docker CLI: %w", err)
				}
				return fmt.Errorf("docker login %s: %w", server, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "docker push %s/NAME:TAG now pushes to the Clank registry\n", server)
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "the registry's address to log in to (default: the one the daemon reports)")
	cmd.Flags().BoolVar(&printPassword, "print-password", false, "print the password instead of logging in")
	return cmd
}
