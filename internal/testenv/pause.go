package testenv

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
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

// Image is a single-platform OCI image held in memory: its manifest and the
// blobs the manifest names (the config and the layers).
type Image struct {
	// Manifest is the OCI image manifest (application/vnd.oci.image.manifest.v1+json).
	Manifest []byte
	// ManifestDigest is sha256:HEX of Manifest.
	ManifestDigest string
	// Blobs are the config and layers by digest, in the manifest's order (config first).
	Blobs []Blob
}

// Blob is one content-addressed blob of an image.
type Blob struct {
	Digest string // sha256:HEX
	Data   []byte
}

// ImageManifestType is the media type of Image.Manifest.
const ImageManifestType = "application/vnd.oci.image.manifest.v1+json"

// digestOf returns sha256:HEX of b.
func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// PauseOCIImage builds the pause stand-in (internal/testenv/cmd/pause, a
// static binary that blocks until signalled and answers HTTP on $PAUSE_HTTP)
// into a single-layer OCI image whose entrypoint is /pause. extra files (path
// in the image: contents) go into the same layer, so an image can be told
// apart from the imported pause image by its layer's digest.
func PauseOCIImage(t testing.TB, extra map[string][]byte) *Image {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pause")
	GoBuild(t, "./internal/testenv/cmd/pause", bin, "-s -w")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	files := map[string][]byte{"pause": data}
	for p, b := range extra {
		files[strings.TrimPrefix(p, "/")] = b
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		mode := int64(0o644)
		if n == "pause" {
			mode = 0o755
		}
		if err := lw.WriteHeader(&tar.Header{Name: n, Mode: mode, Size: int64(len(files[n])), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		lw.Write(files[n])
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	layerDigest := digestOf(layer.Bytes())
	cfg := mustJSON(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Entrypoint": []string{"/pause"}, "User": "65535:65535"},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	img := &Image{Blobs: []Blob{{Digest: digestOf(cfg), Data: cfg}, {Digest: layerDigest, Data: layer.Bytes()}}}
	img.Manifest = mustJSON(map[string]any{
		"schemaVersion": 2,
		"mediaType":     ImageManifestType,
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": img.Blobs[0].Digest, "size": len(cfg)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": layer.Len()}},
	})
	img.ManifestDigest = digestOf(img.Manifest)
	return img
}

// PauseImage packs the pause stand-in (PauseOCIImage) as an OCI image layout
// tarball named by each of PauseImageNames, for `ctr -n k8s.io images import`.
// No image registry is reachable from the test machines.
func PauseImage(t testing.TB, dir string) string {
	t.Helper()
	img := PauseOCIImage(t, nil)
	var manifests []any // one entry per name, all the same manifest
	for _, name := range PauseImageNames {
		manifests = append(manifests, map[string]any{
			"mediaType": ImageManifestType, "digest": img.ManifestDigest, "size": len(img.Manifest),
			"platform":    map[string]string{"architecture": "amd64", "os": "linux"},
			"annotations": map[string]string{"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name[strings.LastIndex(name, ":")+1:]},
		})
	}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": manifests})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "pause.tar")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	write("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	write("index.json", index)
	for _, b := range append([]Blob{{Digest: img.ManifestDigest, Data: img.Manifest}}, img.Blobs...) {
		write("blobs/sha256/"+strings.TrimPrefix(b.Digest, "sha256:"), b.Data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}
