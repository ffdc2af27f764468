package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/clank-dev/clank/api"
)

func servicesCmd(s *settings) *cobra.Command {
	var output string
	var showEnv bool
	cmd := &cobra.Command{
		Use:   "services",
		Short: "List services",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c := s.client()
			svcs, err := c.Services(cmd.Context())
			if err != nil {
				return err
			}
			if showEnv {
				for i := range svcs {
					full, err := c.Service(cmd.Context(), svcs[i].Name, true)
					if err != nil {
						return err
					}
					svcs[i] = full
				}
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), svcs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATUS\tREPLICAS\tIMAGE\tPORT\tDOMAINS\tENV")
			for _, svc := range svcs {
				status := svc.Status + runtimeLabel(svc.Runtime)
				if svc.Frozen {
					status += " · " + frozenLabel(svc.FrozenAt)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", svc.Name, status, serviceReplicas(svc), svc.Image, svc.Port, strings.Join(svc.Domains, ","), envLabel(svc.EnvKeys, svc.Env))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	cmd.Flags().BoolVar(&showEnv, "show-env", false, "include env values (secrets)")
	return cmd
}

func envLabel(keys []string, values map[string]string) string {
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		if v, ok := values[k]; ok {
			parts = append(parts, k+"="+v)
		} else {
			parts = append(parts, k)
		}
	}
	return strings.Join(parts, ",")
}

func deploymentsCmd(s *settings) *cobra.Command {
	var output, service string
	var showEnv bool
	var limit int
	cmd := &cobra.Command{
		Use:   "deployments --service NAME",
		Short: "List a service's deployments, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if service == "" {
				return usagef("deployments needs --service NAME")
			}
			ds, err := s.client().DeploymentsEnv(cmd.Context(), service, limit, 0, showEnv)
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), ds)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "#\tID\tSTATUS\tREPLICAS\tKIND\tIMAGE\tAGE\tBY\tROLLBACK")
			for _, d := range ds {
				badge := ""
				if d.RollbackCapable {
					badge = "capable (" + d.ImageAvailabilityVia + ")"
				} else if d.ImageAvailability == "missing" {
					badge = "image missing"
				}
				status := d.Status + runtimeLabel(d.Runtime) + warmLabel(d.WarmUntil)
				if d.FailureReason != "" {
					status += ": " + truncate(d.FailureReason, 48)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Number, d.ID, status, deploymentReplicas(d), kindLabel(d), d.Image, age(d.CreatedAt), d.TriggeredBy, badge)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&service, "service", "", "the service")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	cmd.Flags().BoolVar(&showEnv, "show-env", false, "include env values (secrets)")
	cmd.Flags().IntVar(&limit, "limit", 50, "how many, newest first")
	return cmd
}

// serviceReplicas is "2/3" (healthy of the ACTIVE deployment's), with the
// service's own count when the next deployment runs another ("2/3 → 4"),
// or the count alone when nothing is ACTIVE.
func serviceReplicas(svc api.Service) string {
	if svc.ActiveDeploymentID == nil || svc.ActiveReplicas == 0 {
		return strconv.Itoa(svc.Replicas)
	}
	out := fmt.Sprintf("%d/%d", svc.HealthyReplicas, svc.ActiveReplicas)
	if svc.Replicas != svc.ActiveReplicas {
		out += fmt.Sprintf(" → %d", svc.Replicas)
	}
	return out
}

// deploymentReplicas is "2/3" (healthy of its count) for an ACTIVE
// deployment, the count alone for the others.
func deploymentReplicas(d api.Deployment) string {
	if d.Runtime == nil {
		return strconv.Itoa(d.Replicas)
	}
	return fmt.Sprintf("%d/%d", d.HealthyReplicas, d.Replicas)
}

// runtimeLabel follows an ACTIVE status whose containers are not healthy:
// "ACTIVE · crashed".
func runtimeLabel(runtime *string) string {
	if runtime == nil || *runtime == "healthy" {
		return ""
	}
	return " · " + *runtime
}

// warmLabel follows the status of a warm standby: "INACTIVE · warm, 4m left".
func warmLabel(until *time.Time) string {
	if until == nil {
		return ""
	}
	secs := int(math.Ceil(time.Until(*until).Seconds()))
	switch {
	case secs <= 0:
		return ""
	case secs < 60:
		return fmt.Sprintf(" · warm, %ds left", secs)
	}
	return fmt.Sprintf(" · warm, %dm left", (secs+59)/60)
}

func kindLabel(d api.Deployment) string {
	if d.SourceNumber != 0 {
		return fmt.Sprintf("%s of #%d", d.Kind, d.SourceNumber)
	}
	return d.Kind
}

func age(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func logsCmd(s *settings) *cobra.Command {
	var service, deployment string
	var followLogs, timestamps bool
	cmd := &cobra.Command{
		Use:   "logs --service NAME [--deployment ID] [-f] [-t]",
		Short: "Print a deployment's container logs (the ACTIVE one by default; once its container is gone, the log kept from it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if service == "" {
				return usagef("logs needs --service NAME")
			}
			return s.client().Logs(cmd.Context(), service, deployment, api.LogOptions{Follow: followLogs, Timestamps: timestamps}, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&service, "service", "", "the service")
	cmd.Flags().StringVar(&deployment, "deployment", "", "the deployment (id or number)")
	cmd.Flags().BoolVarP(&followLogs, "follow", "f", false, "keep printing new lines")
	cmd.Flags().BoolVarP(&timestamps, "timestamps", "t", false, "begin each line with its time")
	return cmd
}

func certsCmd(s *settings) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "List the TLS certificates of the domains services serve (with --https-addr)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c := s.client()
			list, err := c.Certificates(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), list)
			}
			if len(list) == 0 {
				if st, err := c.Status(cmd.Context()); err == nil && st.HTTPS == "off" {
					fmt.Fprintln(cmd.OutOrStdout(), "HTTPS is off: start the daemon with --https-addr :443 to get certificates")
					return nil
				}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DOMAIN\tSERVICE\tSTATUS\tISSUER\tNOT AFTER\tLAST ERROR")
			dash := func(s string) string {
				if s == "" {
					return "-"
				}
				return s
			}
			for _, c := range list {
				notAfter := "-"
				if c.NotAfter != nil {
					notAfter = c.NotAfter.Local().Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Domain, c.Service, c.Status, dash(c.Issuer), notAfter, dash(truncate(c.LastError, 80)))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	return cmd
}

func nodesCmd(s *settings) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the Docker Swarm's nodes and how many of Clank's tasks run on each (clank serve --runtime swarm)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c := s.client()
			list, err := c.Nodes(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), list)
			}
			if len(list) == 0 {
				if st, err := c.Status(cmd.Context()); err == nil && st.Runtime != "swarm" {
					fmt.Fprintln(cmd.OutOrStdout(), "the daemon runs on one Docker engine: start it with --runtime swarm on a Swarm manager to run on Swarm's nodes")
					return nil
				}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "HOSTNAME\tADDRESS\tROLE\tSTATE\tAVAILABILITY\tTASKS\tID")
			for _, n := range list {
				role := n.Role
				if n.Leader {
					role += " (leader)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", n.Hostname, n.Addr, role, n.State, n.Availability, n.Tasks, n.ID[:min(12, len(n.ID))])
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	return cmd
}
