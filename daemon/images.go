package daemon

import (
	"net/http"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/registry"
	"github.com/clank-dev/clank/store"
)

// POST /v1/prune?service=S&keep=N
func (d *Daemon) prune(r *http.Request) (int, any, error) {
	keep, err := intParam(r, "keep", engine.DefaultKeepImages)
	if err != nil {
		return 0, nil, err
	}
	pruned, err := d.Engine.Prune(r.Context(), r.URL.Query().Get("service"), keep)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, prunedImages(pruned), nil
}

// prunedImages are the wire form of what a prune or a purge removed.
func prunedImages(pruned []engine.PrunedImage) []api.PrunedImage {
	out := make([]api.PrunedImage, 0, len(pruned))
	for _, p := range pruned {
		pi := api.PrunedImage{Service: p.Service, Deployment: p.Deployment, Image: p.Image, ImageDigest: p.Digest, ImageSource: p.Source}
		if p.Err != nil {
			pi.Error = p.Err.Error()
		}
		out = append(out, pi)
	}
	return out
}

// GET /v1/registry/credential: what pushes and deletes need.
func (d *Daemon) registryCredential(*http.Request) (int, any, error) {
	if d.registry == nil {
		return 0, nil, &refusal{"the Clank registry is off (--registry-addr \"\")"}
	}
	c := d.registry.Credential()
	return http.StatusOK, api.RegistryCredential{Registry: d.registryHost(), Username: c.Username, Password: c.Password}, nil
}

// POST /v1/registry/gc: garbage collection of the Clank registry that keeps
// every manifest a deployment recorded (any deployment may be rolled back or
// redeployed to while it exists).
func (d *Daemon) registryGC(r *http.Request) (int, any, error) {
	if d.registry == nil {
		return 0, nil, badRequest("the Clank registry is off (--registry-addr \"\")")
	}
	images, err := d.Store.Images(r.Context(), false)
	if err != nil {
		return 0, nil, err
	}
	res, err := d.registry.GC(r.Context(), keepRecorded(images))
	if err != nil {
		return 0, nil, err
	}
	out := api.GCResult{ManifestsKept: res.ManifestsKept, BlobsRemoved: res.BlobsRemoved, Seconds: res.Duration.Seconds()}
	for _, m := range res.ManifestsRemoved {
		out.ManifestsRemoved = append(out.ManifestsRemoved, m.Repo+"@"+m.Digest)
	}
	return http.StatusOK, out, nil
}

// keepRecorded is registry GC's rule: a manifest stays while any deployment
// recorded its digest, whatever host name its image was pushed and deployed
// under (127.0.0.1:5000, localhost:5000, a LAN name), so neither the image's
// source nor its repository's host is asked: a digest names the content.
func keepRecorded(images []store.ImageRef) registry.KeepFunc {
	needed := make(map[string]bool, len(images))
	for _, im := range images {
		needed[im.Digest] = true
	}
	return func(_, digest string) bool { return needed[digest] }
}
