package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

// maxReplicas is the engine's bound (engine.MaxReplicas), checked here too
// so that bad input is a usage error before anything is asked.
const maxReplicas = 64

func checkReplicas(n int) error {
	if n < 1 || n > maxReplicas {
		return usagef("invalid replica count %d: want 1 to %d", n, maxReplicas)
	}
	return nil
}

func scaleCmd(s *settings) *cobra.Command {
	var service string
	cmd := &cobra.Command{
		Use:   "scale --service NAME N",
		Short: "Run a service's ACTIVE deployment with N replicas, in place, and make N its count",
		Long: "Run a service's ACTIVE deployment with N replicas, in place (no new deployment):\n" +
			"new replicas start from the same snapshot and are routed once they pass their health\n" +
			"check; replicas beyond N leave the route, drain and are removed. N becomes the\n" +
			"service's count, which every later deployment (a rollback too) runs with.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if service == "" {
				return usagef("scale needs --service NAME")
			}
			n, err := strconv.Atoi(args[0])
			if err != nil {
				return usagef("invalid replica count %q: want a number from 1 to %d", args[0], maxReplicas)
			}
			if err := checkReplicas(n); err != nil {
				return err
			}
			res, err := s.client().Scale(cmd.Context(), service, n)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if d := res.Deployment; d != nil {
				fmt.Fprintf(out, "%s: deployment #%d runs %s, %d/%d healthy\n", service, d.Number, replicasWord(d.Replicas), d.HealthyReplicas, d.Replicas)
				return nil
			}
			fmt.Fprintf(out, "%s: %s; nothing is ACTIVE, the next deployment runs them\n", service, replicasWord(res.Service.Replicas))
			return nil
		},
	}
	cmd.Flags().StringVar(&service, "service", "", "the service")
	return cmd
}

// replicasWord says "1 replica" or "3 replicas".
func replicasWord(n int) string {
	if n == 1 {
		return "1 replica"
	}
	return fmt.Sprintf("%d replicas", n)
}
