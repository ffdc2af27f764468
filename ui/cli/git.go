package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/internal/gitsrc"
)

// buildFromGit builds the Dockerfile of a git commit (spec is PATH[#REF],
// REF defaulting to HEAD) in the daemon for service, streaming the build's
// output to out, and returns the image to deploy: local-only, or pushed to the
// Clank registry with push.
func buildFromGit(ctx context.Context, c *api.Client, service, spec string, push bool, out io.Writer) (string, error) {
	commit, tar, err := gitContext(ctx, spec)
	if err != nil {
		return "", err
	}
	defer tar.Close()
	fmt.Fprintf(out, "build of %s from %s at %s\n", service, spec, commit[:min(len(commit), 12)])
	// A git archive that fails ends the stream with its error, so the daemon
	// sees a cut-off upload rather than a short context: no need to check Close.
	return c.Build(ctx, service, commit, push, tar, out)
}

// gitContext resolves spec (PATH[#REF], REF defaulting to HEAD) to a commit
// and streams `git archive` of it: the build context, which is PATH's
// directory in that commit (the repository's root, or a directory inside it).
// A spec that names an existing directory as a whole is a PATH without REF, so
// a '#' in a path works. Bad input (no repository, a REF that is no commit, no
// Dockerfile) is a usage error of one line. The caller closes tar.
func gitContext(ctx context.Context, spec string) (commit string, tar io.ReadCloser, err error) {
	path, ref := spec, "HEAD"
	if fi, err := os.Stat(spec); err != nil || !fi.IsDir() {
		if p, r, ok := strings.Cut(spec, "#"); ok {
			path, ref = p, r
		}
	}
	switch {
	case path == "":
		return "", nil, usagef("--git %q: no repository path: use --git PATH[#REF]", spec)
	case ref == "" || strings.HasPrefix(ref, "-"):
		return "", nil, usagef("--git %q: invalid ref %q", spec, ref)
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		return "", nil, usagef("--git %s: no such directory", path)
	}
	if _, err := gitsrc.Git(ctx, path, nil, "rev-parse", "--git-dir"); err != nil {
		var gf *gitsrc.Failure
		if !errors.As(err, &gf) {
			return "", nil, fmt.Errorf("--git needs %w", err)
		}
		return "", nil, usagef("--git %s: %s", path, gf.Msg)
	}
	commit, err = gitsrc.Git(ctx, path, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", ref+"^{commit}")
	if err != nil {
		return "", nil, usagef("--git %s: %q is not a commit in %s", spec, ref, path)
	}
	// "./" is relative to PATH: a directory inside a repository is the
	// context, as `git archive` run there makes it.
	if !gitsrc.HasDockerfile(ctx, path, nil, commit, "./") {
		return "", nil, usagef("--git %s: commit %s has no Dockerfile in %s", spec, commit[:min(len(commit), 12)], path)
	}
	tar, err = gitsrc.Archive(ctx, path, nil, commit)
	if err != nil {
		return "", nil, err
	}
	return commit, tar, nil
}
