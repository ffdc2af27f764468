package gitsrc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Dir is where the bare repository that `git push` to a service lands in
// lives: <data-dir>/git/<service>.git. The service name is a checked one (no
// separator, no dots), so the path stays under the data dir.
func Dir(dataDir, service string) string {
	return filepath.Join(dataDir, "git", service+".git")
}

// preReceive is the hook every repository gets. It hands the push (where
// git keeps the pushed objects for now, and the ref updates) to Clank through
// the two FIFOs in $CLANK_PUSH_DIR, which the process that runs
// receive-pack made, and relays Clank's answer line by line; its exit status
// accepts or rejects the whole push. Run any other way (a push straight into
// the directory), it refuses.
const preReceive = `#!/bin/sh
# Installed by Clank: pushes go through Clank's SSH server, which builds and
# deploys what is pushed; this hook hands each push over and relays the answer.
dir=$CLANK_PUSH_DIR
if [ -z "$dir" ] || [ ! -p "$dir/in" ] || [ ! -p "$dir/out" ]; then
	echo "clank: push through Clank's SSH server: git push ssh://git@HOST:2222/SERVICE" >&2
	exit 1
fi
{
	printf 'objects %s\n' "$GIT_OBJECT_DIRECTORY"
	printf 'alternates %s\n' "$GIT_ALTERNATE_OBJECT_DIRECTORIES"
	cat
	echo end
} > "$dir/in"
while IFS= read -r line; do
	case $line in
	"say "*) printf '%s\n' "${line#say }" ;;
	"exit "*) exit "${line#exit }" ;;
	esac
done < "$dir/out"
echo "clank: the push was cut off" >&2
exit 1
`

// EnsureBare makes dir a bare repository with Clank's hook, if it is not
// one yet, and (re)writes the hook and the settings Clank relies on.
func EnsureBare(ctx context.Context, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); os.IsNotExist(err) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return fmt.Errorf("repository %s: %w", dir, err)
		}
		if _, err := Git(ctx, filepath.Dir(dir), nil, "init", "--quiet", "--bare", dir); err != nil {
			return fmt.Errorf("repository %s: %w", dir, err)
		}
	}
	for _, kv := range [][2]string{
		// A global core.hooksPath would skip the hook, and with it Clank.
		{"core.hooksPath", filepath.Join(dir, "hooks")},
		// What a stranger's client sends is checked before it is stored.
		{"receive.fsckObjects", "true"},
	} {
		if _, err := Git(ctx, dir, nil, "config", kv[0], kv[1]); err != nil {
			return fmt.Errorf("repository %s: %w", dir, err)
		}
	}
	hook := filepath.Join(dir, "hooks", "pre-receive")
	if err := os.MkdirAll(filepath.Dir(hook), 0o700); err != nil {
		return fmt.Errorf("repository %s: %w", dir, err)
	}
	if b, err := os.ReadFile(hook); err == nil && string(b) == preReceive {
		return nil
	}
	if err := os.WriteFile(hook+".new", []byte(preReceive), 0o700); err != nil {
		return fmt.Errorf("repository %s: hook: %w", dir, err)
	}
	if err := os.Rename(hook+".new", hook); err != nil {
		return fmt.Errorf("repository %s: hook: %w", dir, err)
	}
	return nil
}
