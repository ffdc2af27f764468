package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clank-dev/clank/api"
)

// actionFlags are what deploy, redeploy and rollback share.
type actionFlags struct {
	service, deployment, image, output string
	detach, dryRun                     bool
	git                                string
	push, allowSchemaChange            bool
}

func actionCmd(s *settings, kind, use, short string) (*cobra.Command, *actionFlags) {
	f := &actionFlags{}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.service == "" {
				return usagef("%s needs --service NAME", kind)
			}
			if kind == "redeploy" && f.deployment == "" {
				return usagef("redeploy needs --deployment ID")
			}
			if err := checkOutput(f.output); err != nil {
				return err
			}
			if f.push && f.git == "" {
				return usagef("--push goes with --git")
			}
			if f.git != "" {
				if f.dryRun {
					return usagef("--git builds an image: it does not go with --dry-run")
				}
				if f.image != "" {
					return usagef("--git and --image exclude each other")
				}
				buildOut := cmd.OutOrStdout()
				if f.output == "json" {
					buildOut = cmd.ErrOrStderr()
				}
				img, err := buildFromGit(cmd.Context(), s.client(), f.service, f.git, f.push, buildOut)
				if err != nil {
					return err
				}
				f.image = img
			}
			req := api.ActionRequest{Kind: kind, Service: f.service, Deployment: f.deployment, Image: f.image,
				AllowSchemaChange: f.allowSchemaChange}
			return runAction(cmd.Context(), s.client(), req, f, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&f.service, "service", "", "the service")
	cmd.Flags().BoolVar(&f.detach, "detach", false, "return at once with the new deployment's id")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "print what would change, do nothing")
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "output format: json")
	return cmd, f
}

func deployCmd(s *settings) *cobra.Command {
	cmd, f := actionCmd(s, "deploy", "deploy --service NAME [--image REF]", "Deploy the service's current settings (optionally with a new image)")
	cmd.Flags().StringVar(&f.image, "image", "", "set the service's image to REF first")
	cmd.Flags().StringVar(&f.git, "git", "", "build PATH[#REF]'s Dockerfile (REF default HEAD) and deploy it")
	cmd.Flags().BoolVar(&f.push, "push", false, "with --git: push the image to the Clank registry")
	return cmd
}

func redeployCmd(s *settings) *cobra.Command {
	cmd, f := actionCmd(s, "redeploy", "redeploy --service NAME --deployment ID", "Deploy an earlier deployment's image with the service's current settings")
	cmd.Flags().StringVar(&f.deployment, "deployment", "", "the deployment whose image to use (id or number)")
	allowSchemaChangeFlag(cmd, f)
	return cmd
}

func rollbackCmd(s *settings) *cobra.Command {
	cmd, f := actionCmd(s, "rollback", "rollback --service NAME [--deployment ID] [--dry-run]", "Start a new deployment from an earlier one: its image, env, port, health check, limits and domains")
	cmd.Flags().StringVar(&f.deployment, "deployment", "", "the deployment to roll back to (id or number; default: the one ACTIVE before the current)")
	allowSchemaChangeFlag(cmd, f)
	return cmd
}

// allowSchemaChangeFlag is --allow-schema-change of rollback and redeploy.
func allowSchemaChangeFlag(cmd *cobra.Command, f *actionFlags) {
	cmd.Flags().BoolVar(&f.allowSchemaChange, "allow-schema-change", false,
		"go ahead although the target's dev.clank.schema label differs from the ACTIVE deployment's")
}

func runAction(ctx context.Context, c *api.Client, req api.ActionRequest, f *actionFlags, out io.Writer) error {
	if f.dryRun {
		p, err := c.Plan(ctx, req)
		if err != nil {
			return err
		}
		if f.output == "json" {
			if err := printJSON(out, p); err != nil {
				return err
			}
		} else {
			printPlan(out, p)
		}
		if p.Refusal != "" {
			return errors.New(p.Refusal)
		}
		return nil
	}
	var events <-chan api.Event
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !f.detach {
		// Subscribe first, so that no step of the new deployment is missed.
		var err error
		if events, err = c.Subscribe(wctx); err != nil {
			return err
		}
	}
	d, err := c.Act(ctx, req)
	if err != nil {
		return err
	}
	if f.detach {
		if f.output == "json" {
			return printJSON(out, d)
		}
		fmt.Fprintln(out, d.ID)
		return nil
	}
	final, err := follow(ctx, c, d, events, out, f.output != "json")
	if f.output == "json" {
		if perr := printJSON(out, final); perr != nil {
			return perr
		}
	}
	return err
}

// follow prints each lifecycle step of d as it happens, until ACTIVE (nil) or
// FAILED/CANCELLED (an error with the reason).
func follow(ctx context.Context, c *api.Client, d api.Deployment, events <-chan api.Event, out io.Writer, human bool) (api.Deployment, error) {
	start := time.Now()
	if human {
		what := d.Kind + " #" + fmt.Sprint(d.Number)
		if d.SourceNumber != 0 {
			what += fmt.Sprintf(" (from #%d)", d.SourceNumber)
		}
		digest := d.ImageDigest
		if i := strings.IndexByte(digest, ':'); i >= 0 && len(digest) > i+13 {
			digest = digest[:i+13]
		}
		fmt.Fprintf(out, "%s of %s: %s %s\n", what, d.Service, d.Image, digest)
		fmt.Fprintf(out, "  %-16s %s\n", d.Status, "started")
	}
	last := d.Status
	for {
		ev, ok := <-events
		if !ok {
			// The stream ended (the daemon went away, or we fell behind): ask.
			dd, _, err := c.Deployment(ctx, d.ID)
			if err != nil {
				return d, fmt.Errorf("lost track of deployment %s: %w", d.ID, err)
			}
			return finish(dd, out, human, start)
		}
		if ev.Type == api.EventCertificate && ev.Service == d.Service && human {
			// Said while waiting, never waited for: a certificate does not hold a deployment up.
			fmt.Fprintf(out, "  %-16s %s  (+%.2fs)\n", "certificate", ev.Message, time.Since(start).Seconds())
		}
		if ev.DeploymentID != d.ID || ev.Deployment == nil {
			continue
		}
		d = *ev.Deployment
		// A status change, or a health check's new result (recorded
		// alike: `clank deployments` and the dashboard say the same).
		result := ev.Type == "deployment" && d.Status == "HEALTH_CHECKING" && last == d.Status
		if (d.Status != last || result) && human {
			fmt.Fprintf(out, "  %-16s %s  (+%.2fs)\n", d.Status, ev.Message, time.Since(start).Seconds())
		}
		last = d.Status
		switch d.Status {
		case "ACTIVE", "FAILED", "CANCELLED":
			return finish(d, out, false, start)
		}
	}
}

func finish(d api.Deployment, out io.Writer, human bool, start time.Time) (api.Deployment, error) {
	switch d.Status {
	case "ACTIVE", "DRAINING", "INACTIVE":
		if human {
			fmt.Fprintf(out, "  %-16s (+%.2fs)\n", d.Status, time.Since(start).Seconds())
		}
		return d, nil
	case "FAILED", "CANCELLED":
		return d, fmt.Errorf("deployment #%d of %s %s: %s", d.Number, d.Service, d.Status, d.FailureReason)
	}
	return d, fmt.Errorf("deployment #%d of %s is %s", d.Number, d.Service, d.Status)
}

func printPlan(out io.Writer, p api.Plan) {
	target := ""
	if p.Target != nil {
		target = fmt.Sprintf(" to #%d (%s, %s)", p.Target.Number, p.Target.Image, p.Target.Status)
	}
	fmt.Fprintf(out, "%s of %s%s\n", p.Kind, p.Service, target)
	if sc := p.SchemaChange; sc != nil {
		fmt.Fprintf(out, "  schema changes: %q (ACTIVE) -> %q\n", sc.From, sc.To)
	}
	if p.Refusal != "" {
		fmt.Fprintf(out, "  refused: %s\n", p.Refusal)
		return
	}
	if p.Current == nil {
		fmt.Fprintln(out, "  nothing is ACTIVE yet: this becomes the first ACTIVE deployment")
	} else if len(p.Changes) == 0 {
		fmt.Fprintf(out, "  no changes against the ACTIVE deployment #%d\n", p.Current.Number)
	} else {
		fmt.Fprintf(out, "  changes against the ACTIVE deployment #%d:\n", p.Current.Number)
	}
	for _, c := range p.Changes {
		if c.Field == "env" {
			fmt.Fprintf(out, "    env %-24s %s\n", c.Key, c.Op)
			continue
		}
		fmt.Fprintf(out, "    %-28s %s -> %s\n", c.Field, c.From, c.To)
	}
	fmt.Fprintln(out, "  (dry run: nothing was changed)")
}

func checkOutput(o string) error {
	if o != "" && o != "json" {
		return usagef("unknown output format %q: only json", o)
	}
	return nil
}

func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
