package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func unfreezeCmd(s *settings) *cobra.Command {
	var service string
	cmd := &cobra.Command{
		Use:   "unfreeze --service NAME",
		Short: "Let git pushes deploy a service again after a rollback froze them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if service == "" {
				return usagef("unfreeze needs --service NAME")
			}
			u, err := s.client().Unfreeze(cmd.Context(), service, actor())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !u.WasFrozen {
				fmt.Fprintf(out, "%s was not frozen: pushes to %s deploy it\n", service, u.Service.GitBranch)
				return nil
			}
			fmt.Fprintf(out, "%s unfrozen: pushes to %s deploy it again\n", service, u.Service.GitBranch)
			if u.Service.HeldImage != "" {
				fmt.Fprintf(out, "a push was held while frozen: deploy it with clank deploy --service %s --image %s\n", service, u.Service.HeldImage)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&service, "service", "", "the service")
	return cmd
}

// frozenLabel is how a frozen service reads in lists: "frozen 3m ago".
func frozenLabel(at *time.Time) string {
	if at == nil {
		return "frozen"
	}
	return "frozen " + age(*at) + " ago"
}
