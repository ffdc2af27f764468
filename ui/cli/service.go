package cli

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/clank-dev/clank/api"
)

// serviceFlags are the settings `service create` and `service update` share.
type serviceFlags struct {
	image, healthPath, memory, gitBranch   string
	port                                   int
	env, domains                           []string
	healthInterval, healthTimeout, timeout time.Duration
	cpus                                   float64
	constraints, placementPrefs            []string
	pushBuilds                             bool
	httpsRedirect                          bool
	// The policy after each cutover.
	autoRollback, keepWarm bool
	watchWindow            time.Duration
	watchFailures          int
	watch5xx               float64
	replicas               int
}

func (f *serviceFlags) register(fs *pflag.FlagSet, withEnv bool) {
	fs.StringVar(&f.image, "image", "", "image reference (repo[:tag][@digest])")
	fs.IntVar(&f.port, "port", 0, "the port the container listens on")
	if withEnv {
		fs.StringArrayVar(&f.env, "env", nil, "an environment variable K=V (repeatable)")
	}
	fs.StringArrayVar(&f.domains, "domain", nil, "a domain the edge router sends to it (repeatable; default <name>.localhost)")
	fs.StringVar(&f.healthPath, "health-path", "", "the HTTP path that answers 2xx when ready (default /)")
	fs.DurationVar(&f.healthInterval, "health-interval", 0, "time between health probes (default 1s)")
	fs.DurationVar(&f.healthTimeout, "health-timeout", 0, "timeout of one health probe (default 5s)")
	fs.DurationVar(&f.timeout, "deploy-timeout", 0, "how long a deployment may take to pass its health check (default 60s)")
	fs.Float64Var(&f.cpus, "cpus", 0, "CPU limit, like 0.5")
	fs.StringVar(&f.memory, "memory", "", "memory limit, like 256m")
	fs.StringArrayVar(&f.constraints, "constraint", nil, "on Docker Swarm: where its tasks may run, like node.role==worker (repeatable; on update the list replaces the old one, --constraint '' clears it)")
	fs.StringArrayVar(&f.placementPrefs, "placement-pref", nil, "on Docker Swarm: how its tasks spread, like spread=node.labels.zone (repeatable; on update the list replaces the old one, --placement-pref '' clears it)")
	fs.StringVar(&f.gitBranch, "git-branch", "", "the branch whose git pushes deploy the service (default main)")
	fs.BoolVar(&f.pushBuilds, "push-builds", false, "push the images git pushes build to the Clank registry")
	fs.BoolVar(&f.httpsRedirect, "https-redirect", true, "redirect plain HTTP to HTTPS for its domains that have a certificate (takes effect at once)")
	fs.BoolVar(&f.autoRollback, "auto-rollback", false, "roll back by itself when the watch trips after a cutover (default off)")
	fs.DurationVar(&f.watchWindow, "watch-window", 0, "how long each deployment is watched after its cutover; 0 for no watch and no warm standby (default 5m)")
	fs.IntVar(&f.watchFailures, "watch-failures", 0, "failed health probes in a row that trip the watch (default 3)")
	fs.Float64Var(&f.watch5xx, "watch-5xx", 0, "the ratio of 5xx answers (over >= 20) that trips the watch; 0 for none (default 0.5)")
	fs.BoolVar(&f.keepWarm, "keep-warm", true, "keep the replaced deployment's container running during the watch window, for an instant rollback")
	fs.IntVar(&f.replicas, "replicas", 1, "how many containers each deployment runs, rollbacks too (the ACTIVE one keeps its count: clank scale changes it)")
}

// spec takes the flags that were set (cmd.Flags().Changed) into a ServiceSpec.
func (f *serviceFlags) spec(cmd *cobra.Command) (api.ServiceSpec, error) {
	var s api.ServiceSpec
	fs := cmd.Flags()
	str := func(name, v string) *string {
		if fs.Changed(name) {
			return &v
		}
		return nil
	}
	dur := func(name string, d time.Duration) (*string, error) {
		if !fs.Changed(name) {
			return nil, nil
		}
		if d <= 0 {
			return nil, usagef("--%s must be positive", name)
		}
		v := d.String()
		return &v, nil
	}
	s.Image = str("image", f.image)
	s.HealthPath = str("health-path", f.healthPath)
	s.Memory = str("memory", f.memory)
	s.GitBranch = str("git-branch", f.gitBranch)
	if fs.Changed("push-builds") {
		s.PushBuilds = &f.pushBuilds
	}
	if fs.Changed("auto-rollback") {
		s.AutoRollback = &f.autoRollback
	}
	if fs.Changed("keep-warm") {
		s.KeepWarm = &f.keepWarm
	}
	if fs.Changed("watch-window") {
		if f.watchWindow < 0 {
			return s, usagef("--watch-window must be 0 (no watch) or more")
		}
		v := f.watchWindow.String()
		s.WatchWindow = &v
	}
	if fs.Changed("watch-failures") {
		if f.watchFailures < 1 {
			return s, usagef("--watch-failures must be at least 1")
		}
		s.WatchFailures = &f.watchFailures
	}
	if fs.Changed("watch-5xx") {
		if f.watch5xx < 0 || f.watch5xx > 1 {
			return s, usagef("--watch-5xx must be a ratio from 0 (off) to 1")
		}
		s.Watch5xx = &f.watch5xx
	}
	if fs.Changed("replicas") {
		if err := checkReplicas(f.replicas); err != nil {
			return s, err
		}
		s.Replicas = &f.replicas
	}
	if fs.Changed("port") {
		s.Port = &f.port
	}
	if fs.Changed("cpus") {
		s.CPUs = &f.cpus
	}
	if fs.Changed("domain") {
		s.Domains = f.domains
	}
	if fs.Changed("constraint") {
		list := nonEmpty(f.constraints)
		s.Constraints = &list
	}
	if fs.Changed("placement-pref") {
		list := nonEmpty(f.placementPrefs)
		s.PlacementPrefs = &list
	}
	if fs.Changed("https-redirect") {
		s.HTTPSRedirect = &f.httpsRedirect
	}
	var err error
	if s.HealthInterval, err = dur("health-interval", f.healthInterval); err != nil {
		return s, err
	}
	if s.HealthTimeout, err = dur("health-timeout", f.healthTimeout); err != nil {
		return s, err
	}
	if s.DeployTimeout, err = dur("deploy-timeout", f.timeout); err != nil {
		return s, err
	}
	if len(f.env) > 0 {
		s.Env, err = parseEnvArgs(f.env)
	}
	return s, err
}

func parseEnvArgs(args []string) (map[string]string, error) {
	env := map[string]string{}
	for _, kv := range args {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("invalid env %q: want KEY=VALUE", k)
		}
		env[k] = v
	}
	return env, nil
}

func serviceCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{Use: "service", Short: "Create and change services (without deploying them)", Args: cobra.NoArgs}
	var cf, uf serviceFlags
	create := &cobra.Command{
		Use:   "create NAME --image REF --port N",
		Short: "Create a service",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("image") || !cmd.Flags().Changed("port") {
				return usagef("service create needs --image and --port")
			}
			spec, err := cf.spec(cmd)
			if err != nil {
				return err
			}
			spec.Name = args[0]
			svc, err := s.client().CreateService(cmd.Context(), spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "service %s created (%s, port %d, %s); deploy it with: clank deploy --service %s\n", svc.Name, svc.Image, svc.Port, strings.Join(svc.Domains, ", "), svc.Name)
			return nil
		},
	}
	cf.register(create.Flags(), true)
	update := &cobra.Command{
		Use:   "update NAME [--image REF] [--port N] ...",
		Short: "Change a service's settings; the next deploy uses them",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := uf.spec(cmd)
			if err != nil {
				return err
			}
			if reflect.ValueOf(spec).IsZero() {
				return usagef("service update: nothing to change (see --help)")
			}
			svc, err := s.client().UpdateService(cmd.Context(), args[0], spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "service %s updated; deploy it with: clank deploy --service %s\n", svc.Name, svc.Name)
			return nil
		},
	}
	uf.register(update.Flags(), false)
	cmd.AddCommand(create, update, serviceDeleteCmd(s))
	return cmd
}

func serviceDeleteCmd(s *settings) *cobra.Command {
	var purge bool
	cmd := &cobra.Command{
		Use:   "delete NAME [--purge]",
		Short: "Stop a service's containers, take its routes down, free its domains and delete it",
		Long: "Stop a service's containers, take its routes down, free its domains and delete it.\n" +
			"Its deployment history and images stay (create it again to get them back) unless --purge.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := s.client().DeleteService(cmd.Context(), args[0], purge)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !res.Purged {
				fmt.Fprintf(out, "service %s deleted: %d container(s) removed, its routes and domains freed; its %d deployment(s) stay as history (purge them: clank service delete %s --purge)\n",
					res.Service, res.Containers, res.Deployments, res.Service)
				return nil
			}
			removed := 0
			for _, im := range res.Images {
				if im.Error != "" {
					fmt.Fprintf(out, "kept %s (#%d): %s\n", im.Image, im.Deployment, im.Error)
					continue
				}
				removed++
			}
			fmt.Fprintf(out, "service %s purged: %d container(s) removed, its deployments and events deleted, %d local image(s) removed; its images in the Clank registry go at the next clank registry gc\n",
				res.Service, res.Containers, removed)
			return nil
		},
	}
	cmd.Flags().BoolVar(&purge, "purge", false, "also delete its deployment history and the local images no other service needs")
	return cmd
}

func envCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{Use: "env", Short: "Set or unset a service's environment variables (without deploying)", Args: cobra.NoArgs}
	var setSvc, unsetSvc string
	set := &cobra.Command{
		Use:   "set --service NAME K=V...",
		Short: "Set environment variables",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := parseEnvArgs(args)
			if err != nil {
				return err
			}
			if _, err := s.client().UpdateService(cmd.Context(), setSvc, api.ServiceSpec{Env: env}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "set %d variable(s) on %s; deploy it with: clank deploy --service %s\n", len(env), setSvc, setSvc)
			return nil
		},
	}
	set.Flags().StringVar(&setSvc, "service", "", "the service")
	set.MarkFlagRequired("service")
	unset := &cobra.Command{
		Use:   "unset --service NAME K...",
		Short: "Unset environment variables",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := s.client().UpdateService(cmd.Context(), unsetSvc, api.ServiceSpec{UnsetEnv: args}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "unset %s on %s; deploy it with: clank deploy --service %s\n", strings.Join(args, ", "), unsetSvc, unsetSvc)
			return nil
		},
	}
	unset.Flags().StringVar(&unsetSvc, "service", "", "the service")
	unset.MarkFlagRequired("service")
	cmd.AddCommand(set, unset)
	return cmd
}

// nonEmpty drops the empty entries of a repeatable flag (” clears a list).
func nonEmpty(list []string) []string {
	out := []string{}
	for _, v := range list {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
