package testenv

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/internal/kubeversions"
)

// PauseImageNames are the names the locally built pause image is imported
// as: every default sandbox image of internal/kubeversions, so the node
// config's default (the kubelet minor's pause image) is present whatever
// kubelet version a test runs.
var PauseImageNames = kubeversions.PauseImages()

// PauseImageName is the name test pods run the pause image as (the newest minor's).
var PauseImageName = PauseImageNames[len(PauseImageNames)-1]

// PauseImage builds the pause stand-in (internal/testenv/cmd/pause, a static
// binary that blocks until signalled) and packs it as a single-layer OCI image
// layout tarball named by each of PauseImageNames, for
// `ctr -n k8s.io images import`. No image registry is reachable from the test machines.
func PauseImage(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pause")
	GoBuild(t, "./internal/testenv/cmd/pause", bin, "-s -w")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	if err := lw.WriteHeader(&tar.Header{Name: "pause", Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	lw.Write(data)
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	blobs := map[string][]byte{}
	add := func(b []byte) (string, int) {
		sum := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(sum[:])
		blobs[hex.EncodeToString(sum[:])] = b
		return d, len(b)
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	layerDigest, layerSize := add(layer.Bytes())
	cfgDigest, cfgSize := add(mustJSON(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Entrypoint": []string{"/pause"}, "User": "65535:65535"},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	}))
	manDigest, manSize := add(mustJSON(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfgDigest, "size": cfgSize},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": layerSize}},
	}))
	var manifests []any // one entry per name, all the same manifest
	for _, name := range PauseImageNames {
		manifests = append(manifests, map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manDigest, "size": manSize,
			"platform":    map[string]string{"architecture": "amd64", "os": "linux"},
			"annotations": map[string]string{"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name[strings.LastIndex(name, ":")+1:]},
		})
	}
	index := mustJSON(map[string]any{"schemaVersion": 2, "manifests": manifests})
	out := filepath.Join(dir, "pause.tar")
	var img bytes.Buffer
	tw := tar.NewWriter(&img)
	write := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	write("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	write("index.json", index)
	for _, h := range []string{layerDigest, cfgDigest, manDigest} {
		hexsum := h[len("sha256:"):]
		write("blobs/sha256/"+hexsum, blobs[hexsum])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, img.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}
