package docker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/engine"
)

// InspectImage reports what the local engine has for ref; the error wraps
// engine.ErrImageNotFound when it has nothing.
func (r *Runtime) InspectImage(ctx context.Context, ref string) (engine.ImageInfo, error) {
	res, err := r.cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return engine.ImageInfo{}, fmt.Errorf("inspect image %s: %w", ref, engine.ErrImageNotFound)
	}
	if err != nil {
		return engine.ImageInfo{}, r.fail(err, "inspect image %s", ref)
	}
	info := engine.ImageInfo{ID: res.ID, RepoDigests: res.RepoDigests}
	if res.Config != nil {
		info.Labels = res.Config.Labels
	}
	return info, nil
}

// PullImage pulls ref and waits until the engine has it; an error reported in
// the middle of the pull is an error.
func (r *Runtime) PullImage(ctx context.Context, ref string) error {
	res, err := r.cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return r.fail(err, "pull image %s", ref)
	}
	defer res.Close()
	if _, err := readJSONStream(res, nil); err != nil {
		return r.fail(err, "pull image %s", ref)
	}
	return nil
}

// RemoveImage removes a local image with all its tags (forced, so that an
// image tagged twice goes too); an image a running container uses stays, as
// the engine refuses that even when forced. The error wraps
// engine.ErrImageNotFound when the image is absent.
func (r *Runtime) RemoveImage(ctx context.Context, ref string) error {
	_, err := r.cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove image %s: %w", ref, engine.ErrImageNotFound)
	}
	if err != nil {
		return r.fail(err, "remove image %s", ref)
	}
	return nil
}

// TagImage gives the local image source the reference target.
func (r *Runtime) TagImage(ctx context.Context, source, target string) error {
	if _, err := r.cli.ImageTag(ctx, client.ImageTagOptions{Source: source, Target: target}); err != nil {
		return r.fail(err, "tag image %s as %s", source, target)
	}
	return nil
}

// PushImage pushes ref (a tagged reference) with auth (the zero value for no
// credentials) and waits for the end, writing the engine's progress lines to
// out if it is not nil.
func (r *Runtime) PushImage(ctx context.Context, ref string, auth registry.AuthConfig, out io.Writer) error {
	// The X-Registry-Auth header: the JSON of auth, base64url-encoded ("{}"
	// for none: Docker 20.10 refuses a push without the header).
	header, err := json.Marshal(auth)
	if err != nil {
		return fmt.Errorf("push image %s: %w", ref, err)
	}
	res, err := r.cli.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: base64.URLEncoding.EncodeToString(header)})
	if err != nil {
		return r.fail(err, "push image %s", ref)
	}
	defer res.Close()
	if _, err := readJSONStream(res, out); err != nil {
		return r.fail(err, "push image %s", ref)
	}
	return nil
}

// BuildImage builds an image from buildContext, a tar stream holding a
// Dockerfile at its root, tags it tag (if not empty) and labels it. It writes
// the build's output to out if out is not nil, and returns the image ID. A build
// step that fails makes an error that quotes the engine's message.
func (r *Runtime) BuildImage(ctx context.Context, buildContext io.Reader, tag string, labels map[string]string, out io.Writer) (string, error) {
	opts := client.ImageBuildOptions{Labels: labels, Remove: true, ForceRemove: true}
	if tag != "" {
		opts.Tags = []string{tag}
	}
	res, err := r.cli.ImageBuild(ctx, buildContext, opts)
	if err != nil {
		return "", r.fail(err, "build image %s", tag)
	}
	defer res.Body.Close()
	aux, err := readJSONStream(res.Body, out)
	if err != nil {
		return "", r.fail(err, "build image %s", tag)
	}
	for _, raw := range aux {
		var result build.Result
		if json.Unmarshal(raw, &result) == nil && result.ID != "" {
			return result.ID, nil
		}
	}
	if tag == "" {
		return "", fmt.Errorf("build image: the engine did not report the image ID")
	}
	info, err := r.InspectImage(ctx, tag)
	if err != nil {
		return "", fmt.Errorf("build image %s: find the built image: %w", tag, err)
	}
	return info.ID, nil
}
