package node

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDefaultConfigReadInRoot: the node config at its default path is read
// inside the root (a symlink to a file outside is resolved in the root, where
// it does not exist) and bounded like nodeconfig.Load.
func TestDefaultConfigReadInRoot(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "node.yaml"), []byte("apiVersion: provision.dev/v1alpha1\nkind: NodeConfig\n"), 0o644)
	for _, tc := range []struct {
		name  string
		setup func(root string)
		want  string
	}{
		{"larger than 1 MiB", func(root string) {
			os.MkdirAll(filepath.Join(root, "etc/provision"), 0o755)
			os.WriteFile(filepath.Join(root, "etc/provision/node.yaml"), bytes.Repeat([]byte("# padding\n"), 220<<10), 0o644)
		}, "larger than the limit of 1048576 bytes"},
		{"symlink to a file outside the root", func(root string) {
			os.MkdirAll(filepath.Join(root, "etc/provision"), 0o755)
			os.Symlink(filepath.Join(outside, "node.yaml"), filepath.Join(root, "etc/provision/node.yaml"))
		}, "no node config at "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.setup(root)
			_, err := Prepare(context.Background(), Options{Root: root, OSProfile: "debian-12"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
